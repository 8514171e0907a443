//! The writer lease and the journal head: lightweight transactions that
//! let exactly one node append, and fence a node that lost the lease.

use super::{FORMAT_VERSION, Shared, cql_error, retry};
use crate::store::StoreError;
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a conditional statement answered: applied, or not with the row's
/// current values by column name.
pub(super) struct Cas {
    applied: bool,
    columns: Vec<(String, Option<CqlValue>)>,
}

impl Cas {
    fn read(shared: &Shared, result: QueryResult) -> Result<Cas, StoreError> {
        let rows = result.into_rows_result().map_err(|e| cql_error(shared, e))?;
        let names: Vec<String> = rows.column_specs().iter().map(|c| c.name().to_string()).collect();
        let row = rows.first_row::<Row>().map_err(|e| cql_error(shared, e))?;
        let mut columns: Vec<(String, Option<CqlValue>)> = names.into_iter().zip(row.columns).collect();
        let applied = match columns.iter().position(|(n, _)| n == "[applied]") {
            Some(i) => matches!(columns.remove(i).1, Some(CqlValue::Boolean(true))),
            None => return Err(cql_error(shared, "conditional update answered without [applied]")),
        };
        Ok(Cas { applied, columns })
    }

    fn bigint(&self, name: &str) -> Option<i64> {
        self.columns.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            Some(CqlValue::BigInt(x)) => Some(*x),
            _ => None,
        })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.columns.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            Some(CqlValue::Text(x)) => Some(x.clone()),
            _ => None,
        })
    }
}

/// Moves the head from `old` to `new` if this node still holds `epoch`.
pub(super) async fn advance_head(shared: &Shared, epoch: i64, old: i64, new: i64) -> Result<(), StoreError> {
    // An unknown outcome (timeout) is resolved by sending the same
    // conditional update again: it cannot apply twice and tells us the head.
    let result = retry(shared, "journal head update", || {
        shared.session.execute_unpaged(&shared.statements.advance_head, (new, &shared.config.stream, epoch, old))
    })
    .await?;
    let cas = Cas::read(shared, result)?;
    if cas.applied {
        return Ok(());
    }
    let (found_epoch, found_head) = (cas.bigint("epoch"), cas.bigint("head"));
    // An earlier attempt whose answer was lost did apply: only this epoch
    // can have moved the head to `new`.
    if found_epoch == Some(epoch) && found_head == Some(new) {
        return Ok(());
    }
    let by = read_head(shared).await.map(|h| h.writer).unwrap_or_else(|_| "unknown".into());
    Err(StoreError::Fenced { target: shared.target.clone(), by, epoch: found_epoch.unwrap_or(epoch) })
}

pub(super) struct Head {
    epoch: i64,
    pub(super) head: i64,
    writer: String,
    format: i64,
}

pub(super) async fn read_head(shared: &Shared) -> Result<Head, StoreError> {
    let result = retry(shared, "read journal head", || {
        shared.session.execute_unpaged(&shared.statements.read_head, (&shared.config.stream,))
    })
    .await?;
    let row = result
        .into_rows_result()
        .map_err(|e| cql_error(shared, e))?
        .maybe_first_row::<(Option<i64>, Option<i64>, Option<String>, Option<i64>)>()
        .map_err(|e| cql_error(shared, e))?;
    let Some((epoch, head, writer, format)) = row else {
        return Err(StoreError::Damaged {
            target: shared.target.clone(),
            detail: "journal_head row is missing".into(),
        });
    };
    Ok(Head {
        epoch: epoch.unwrap_or(0),
        head: head.unwrap_or(0),
        writer: writer.unwrap_or_default(),
        format: format.unwrap_or(FORMAT_VERSION),
    })
}

pub(super) async fn lease_owner(shared: &Shared) -> Option<String> {
    let result = shared.session.execute_unpaged(&shared.statements.lease_owner, (&shared.config.stream,)).await.ok()?;
    result.into_rows_result().ok()?.maybe_first_row::<(Option<String>,)>().ok()?.and_then(|(o,)| o)
}

pub(super) async fn try_acquire_lease(shared: &Shared) -> Result<bool, StoreError> {
    let ttl = shared.config.lease_ttl_s as i32;
    let result = shared
        .session
        .execute_unpaged(&shared.statements.lease_acquire, (&shared.config.stream, &shared.config.node, ttl))
        .await
        .map_err(|e| cql_error(shared, format!("take the writer lease: {e}")))?;
    let cas = Cas::read(shared, result)?;
    // A lost answer to our own earlier attempt shows up as "held by us".
    Ok(cas.applied || cas.text("owner").as_deref() == Some(shared.config.node.as_str()))
}

pub(super) async fn release_lease(shared: &Shared) {
    let _ = shared
        .session
        .execute_unpaged(&shared.statements.lease_release, (&shared.config.stream, &shared.config.node))
        .await;
}

/// Creates the journal's head row if the stream is new.
pub(super) async fn init_head(shared: &Shared) -> Result<(), StoreError> {
    let init = shared
        .session
        .execute_unpaged(&shared.statements.init_head, (&shared.config.stream, FORMAT_VERSION))
        .await
        .map_err(|e| cql_error(shared, format!("create the journal head: {e}")))?;
    Cas::read(shared, init)?;
    Ok(())
}

/// How often a standby asks for the lease (and reads what the writer committed).
pub(super) fn standby_poll(shared: &Shared) -> Duration {
    Duration::from_millis(u64::from(shared.config.lease_ttl_s) * 1000 / 4).max(Duration::from_millis(250))
}

/// One attempt at the writer lease as a standby: true once held. The
/// first refusal says in the log who holds it; past `standby_wait_max`
/// (counted from `since`) a refusal is an error.
pub(super) async fn try_lease(shared: &Shared, since: Instant, announced: &mut bool) -> Result<bool, StoreError> {
    let config = &shared.config;
    if try_acquire_lease(shared).await? {
        return Ok(true);
    }
    if !*announced {
        let owner = lease_owner(shared).await.unwrap_or_else(|| "unknown".into());
        tracing::warn!(target = %shared.target, writer = %owner, node = %config.node,
            "standby: another node is the journal writer; following its journal, taking over when its lease lapses");
        eprintln!(
            "standby: node {owner:?} is the journal writer of {}; this node ({}) takes over when its lease lapses",
            shared.target, config.node
        );
        *announced = true;
        crate::metrics::set_state(crate::metrics::State::Standby);
    }
    if config.standby_wait_max.is_some_and(|max| since.elapsed() >= max) {
        return Err(cql_error(shared, "the writer lease is held by another node".to_string()));
    }
    Ok(false)
}

/// With the lease held: fences earlier writers by raising the epoch.
/// Returns (epoch, head).
pub(super) async fn fence(shared: &Shared) -> Result<(i64, i64), StoreError> {
    let config = &shared.config;
    loop {
        let head = read_head(shared).await?;
        if head.format != FORMAT_VERSION {
            release_lease(shared).await;
            return Err(StoreError::Format {
                target: shared.target.clone(),
                found: head.format,
                known: FORMAT_VERSION,
            });
        }
        let epoch = head.epoch + 1;
        let result = shared
            .session
            .execute_unpaged(&shared.statements.bump_epoch, (epoch, &config.node, &config.stream, head.epoch))
            .await
            .map_err(|e| cql_error(shared, format!("raise the writer epoch: {e}")))?;
        let cas = Cas::read(shared, result)?;
        let now = read_head(shared).await?;
        if cas.applied || (now.epoch == epoch && now.writer == config.node) {
            tracing::info!(target = %shared.target, node = %config.node, epoch, head = now.head, "journal writer");
            return Ok((epoch, now.head));
        }
        // Another node raised it between our read and our CAS (it held the
        // lease before us): read again and fence it in turn.
    }
}

/// Renews the lease every third of its TTL. Held by another node: marks it
/// lost, so appends refuse for good (fenced). The cluster unreachable past
/// the TTL (no quorum): marks it unsure, so appends refuse for now, and
/// keeps trying; once reachable it renews or takes the lease back (if
/// nobody took it), and the next head CAS checks the epoch, so a node that
/// took over in between still fences this one.
pub(super) async fn renew_lease(shared: Arc<Shared>) {
    let config = &shared.config;
    let ttl = Duration::from_secs(u64::from(config.lease_ttl_s));
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed = shared
            .session
            .execute_unpaged(
                &shared.statements.lease_renew,
                (config.lease_ttl_s as i32, &config.node, &config.stream, &config.node),
            )
            .await;
        let kept = match renewed.map_err(|e| cql_error(&shared, e)).and_then(|r| Cas::read(&shared, r)) {
            Ok(cas) if cas.applied => Some(true),
            // It lapsed (we were slow) and nobody took it: take it back. A
            // standby that took it in between has raised the epoch, and our
            // next head CAS finds out.
            Ok(_) => try_acquire_lease(&shared).await.ok(),
            Err(error) => {
                tracing::warn!(target = %shared.target, %error, "writer lease renewal failed");
                None
            }
        };
        match kept {
            Some(true) => {
                last_renewed = Instant::now();
                if shared.lease_unsure.swap(false, Ordering::Relaxed) {
                    tracing::warn!(target = %shared.target, node = %config.node, "writer lease held again");
                }
                continue;
            }
            None => {
                if last_renewed.elapsed() >= ttl && !shared.lease_unsure.swap(true, Ordering::Relaxed) {
                    tracing::error!(target = %shared.target, node = %config.node,
                        "writer lease cannot be renewed (the cluster is unreachable or has no quorum); \
                         nothing is acknowledged until it is held again; retrying");
                }
                continue;
            }
            // Another node holds it: this one is done writing.
            Some(false) => {
                tracing::error!(target = %shared.target, node = %config.node, "writer lease lost; this node stops writing");
                shared.lease_lost.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}
