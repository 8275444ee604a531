//! `DISPATCHER_CATALOG`: which catalog file the process runs on. Unset, the built-in one; a value starting with
//! `{`, the file's JSON itself (an Azure app setting); otherwise the path of a file (on Azure, relative to the
//! function app's folder, where the host starts the handler).

use dispatcher_core::events::{catalog, file, Catalog};
use std::path::Path;

/// The catalog `setting` names, checked; otherwise every problem, each naming the file and the path inside it.
pub fn load(setting: Option<&str>) -> Result<&'static Catalog, Vec<String>> {
    let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(catalog::built_in());
    };
    let (origin, text) = if setting.starts_with('{') {
        ("the catalog in the setting".to_owned(), setting.to_owned())
    } else {
        let text = std::fs::read_to_string(Path::new(setting))
            .map_err(|e| vec![format!("cannot read the catalog file {setting}: {e}")])?;
        (setting.to_owned(), text)
    };
    // Enrichers' `${NAME}` places are this process's environment variables (app settings on Azure).
    file::load_in(&text, &|name| std::env::var(name).ok())
        .map(Catalog::leak)
        .map_err(|report| report.problems().iter().map(|problem| format!("{origin}: {problem}")).collect())
}

/// Makes `catalog` the process's: before the first event is decoded.
pub fn install(catalog: &'static Catalog) -> anyhow::Result<()> {
    anyhow::ensure!(catalog::install(catalog), "another catalog is already in use");
    Ok(())
}
