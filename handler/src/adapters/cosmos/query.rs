//! Queries, point reads, and pages: cut by keyset (a time field, then `id`, both newest first), so a cursor is
//! `"{ms}:{id}"`, the position after which the next page starts.

use super::cosmos;
use super::throttle::{unthrottled, BUDGET};
use crate::ports::{Cursor, StoreError};
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::options::{ItemWriteOptions, Precondition};
use azure_data_cosmos::{FeedScope, Query};
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// All items a query yields.
pub(super) async fn query_all<T: DeserializeOwned + Send + 'static>(
    container: &ContainerClient,
    query: Query,
    scope: FeedScope,
    context: &str,
) -> Result<Vec<T>, StoreError> {
    let all = || async {
        let items = container.query_items::<T>(query.clone(), scope.clone(), None).await?;
        items.try_collect::<Vec<T>>().await
    };
    unthrottled(context, BUDGET, all).await.map_err(cosmos(context))
}

/// The item `id` of `partition` with its etag, or `None` when there is none; `what` names it in errors
/// ("webhook").
pub(super) async fn point_read<T: DeserializeOwned>(
    container: &ContainerClient,
    partition: &str,
    id: &str,
    what: &str,
) -> Result<Option<(T, Option<String>)>, StoreError> {
    let read = || container.read_item(partition.to_owned(), id, None);
    match unthrottled(what, BUDGET, read).await {
        Ok(response) => {
            let etag = response.headers().etag().map(|e| e.to_string());
            let item = response.into_model().map_err(|e| StoreError::Corrupt(format!("{what} {id:?}: {e}")))?;
            Ok(Some((item, etag)))
        }
        Err(error) if error.status().is_not_found() => Ok(None),
        Err(error) => Err(cosmos(&format!("reading a {what}"))(error)),
    }
}

pub(super) fn etag_of(response: &azure_data_cosmos::models::ItemResponse) -> String {
    response.headers().etag().map(|e| e.to_string()).unwrap_or_default()
}

/// Write options that make a replace conditional on the item's etag (optimistic concurrency).
pub(super) fn if_match(etag: &str) -> Option<ItemWriteOptions> {
    Some(ItemWriteOptions::default().with_precondition(Precondition::if_match(etag.to_owned())))
}

pub(super) fn parameter<V: Serialize>(query: Query, name: &str, value: V) -> Result<Query, StoreError> {
    query.with_parameter(name, value).map_err(|e| StoreError::Storage(format!("query parameter {name}: {e}")))
}

/// The time and id after which the next page starts (`ports::Cursor`).
pub(super) fn parse_cursor(cursor: Option<&str>) -> Result<Option<(i64, String)>, StoreError> {
    cursor.map(|text| Cursor::parse(text).map(|c| (c.position, c.id))).transpose()
}

/// Newest first after the cursor; `limit + 1` fetched to know whether there is a next page.
pub(super) fn keyset_query(
    select: &str,
    filter: &str,
    time_field: &str,
    limit: usize,
    after: &Option<(i64, String)>,
) -> String {
    let mut conditions: Vec<String> = Vec::new();
    if !filter.is_empty() {
        conditions.push(filter.to_owned());
    }
    if after.is_some() {
        conditions.push(format!("(c.{time_field} < @ms OR (c.{time_field} = @ms AND c.id < @id))"));
    }
    let r#where = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!("SELECT TOP {} {select} FROM c{where} ORDER BY c.{time_field} DESC, c.id DESC", limit + 1)
}

pub(super) fn with_cursor(mut query: Query, after: &Option<(i64, String)>) -> Result<Query, StoreError> {
    if let Some((ms, id)) = after {
        query = parameter(query, "@ms", ms)?;
        query = parameter(query, "@id", id)?;
    }
    Ok(query)
}

pub(super) fn cut<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> (i64, String)) -> (Vec<T>, Option<String>) {
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|item| {
            let (position, id) = key(item);
            Cursor { position, id }.to_string()
        })
    });
    (items, next.flatten())
}
