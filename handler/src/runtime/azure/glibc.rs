//! Which glibc a Linux binary needs: the newest `GLIBC_x.y` version its dynamic symbols are bound to. A
//! Functions worker whose image carries an older glibc refuses to start the handler (`version 'GLIBC_2.34' not
//! found`), so `handler package` refuses such a binary first, naming the symbol.

use object::elf::{FileHeader64, EM_X86_64, SHT_DYNSYM};
use object::read::elf::{FileHeader, Sym};
use object::Endianness;

/// The newest glibc every Linux image of the Functions host carries: Debian 11's (docs/azure-functions.md §8).
pub const FLOOR: Version = Version(2, 31);

/// A glibc version, `2.31`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Text that is not a glibc version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a glibc version like 2.31")]
pub struct NotAVersion(String);

impl std::str::FromStr for Version {
    type Err = NotAVersion;

    fn from_str(text: &str) -> Result<Version, NotAVersion> {
        let numbers = text.split_once('.').map(|(major, minor)| (major.parse(), minor.parse()));
        match numbers {
            Some((Ok(major), Ok(minor))) => Ok(Version(major, minor)),
            _ => Err(NotAVersion(text.to_owned())),
        }
    }
}

/// Why a binary would not start on Azure's workers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("not an x86_64 Linux executable: {0}")]
    NotElf(String),
    #[error("built for ELF machine {0}, where Azure's workers are x86_64")]
    OtherMachine(String),
    #[error(
        "it needs glibc {} (symbol {}@GLIBC_{}), newer than {floor}, the oldest the Functions workers may have: \
         build it with scripts/package-function-app.sh",
        .newest.version, .newest.symbol, .newest.version
    )]
    GlibcTooNew { newest: Newest, floor: Version },
}

/// The symbol that needs the newest glibc, and that version; `None` for a binary that needs no versioned glibc
/// symbol (a static one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub symbol: String,
    pub version: Version,
}

/// Reads the dynamic symbols of an x86_64 ELF executable; the error says why `bytes` is not one.
pub fn newest_required(bytes: &[u8]) -> Result<Option<Newest>, BinaryError> {
    let not_elf = |e: object::read::Error| BinaryError::NotElf(e.to_string());
    let header = FileHeader64::<Endianness>::parse(bytes).map_err(not_elf)?;
    let endian = header.endian().map_err(not_elf)?;
    if header.e_machine(endian) != EM_X86_64 {
        return Err(BinaryError::OtherMachine(header.e_machine(endian).to_string()));
    }
    let sections = header.sections(endian, bytes).map_err(not_elf)?;
    let symbols = sections.symbols(endian, bytes, SHT_DYNSYM).map_err(not_elf)?;
    let Some(versions) = sections.versions(endian, bytes).map_err(not_elf)? else { return Ok(None) };
    let mut newest: Option<Newest> = None;
    for (index, symbol) in symbols.enumerate() {
        if !symbol.is_undefined(endian) {
            continue;
        }
        let Ok(Some(version)) = versions.version(versions.version_index(endian, index).index()) else { continue };
        let Some(number) = std::str::from_utf8(version.name()).ok().and_then(|n| n.strip_prefix("GLIBC_")) else {
            continue;
        };
        // GLIBC_PRIVATE and the like name no release: no floor applies to them.
        let Ok(version) = number.parse::<Version>() else { continue };
        if newest.as_ref().is_none_or(|n| version > n.version) {
            let name = symbols.symbol_name(endian, symbol).map_err(not_elf)?;
            newest = Some(Newest { symbol: String::from_utf8_lossy(name).into_owned(), version });
        }
    }
    Ok(newest)
}

/// Whether the binary `bytes` runs on workers with glibc `floor`; the error names the symbol that does not.
pub fn check(bytes: &[u8], floor: Version) -> Result<Option<Newest>, BinaryError> {
    match newest_required(bytes)? {
        Some(newest) if newest.version > floor => Err(BinaryError::GlibcTooNew { newest, floor }),
        newest => Ok(newest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_and_ordered_by_number() {
        assert_eq!("2.31".parse(), Ok(Version(2, 31)));
        assert!(Version(2, 4) < Version(2, 31));
        assert_eq!("2".parse::<Version>().unwrap_err().to_string(), "\"2\" is not a glibc version like 2.31");
    }

    #[test]
    fn what_is_not_an_elf_executable_is_said_so() {
        let error = newest_required(b"#!/bin/sh\necho hi\n").unwrap_err().to_string();
        assert!(error.starts_with("not an x86_64 Linux executable"), "{error}");
    }

    #[test]
    fn this_test_binary_is_read() {
        // Whatever glibc built it, it calls into glibc, so it needs at least 2.2.5 (x86_64's first).
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let newest = newest_required(&bytes).unwrap().expect("a dynamically linked test binary");
        assert!(newest.version >= Version(2, 2), "{newest:?}");
        assert!(!newest.symbol.is_empty());
    }
}
