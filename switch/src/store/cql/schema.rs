//! Connecting to the cluster and creating or upgrading the keyspace's
//! tables (migrations, each applied once, by version).

use super::{CqlConfig, REPLAY_PAGE_ROWS, Shared, Statements};
use crate::store::StoreError;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::{Consistency, SerialConsistency};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub(super) async fn connect(config: CqlConfig, target: String) -> Result<Shared, StoreError> {
    let cql = |detail: String| StoreError::Cql { target: target.clone(), detail };
    let session = SessionBuilder::new()
        .known_nodes(&config.nodes)
        .connection_timeout(Duration::from_secs(5))
        .build()
        .await
        .map_err(|e| cql(format!("cannot connect: {e}")))?;
    migrate(&session, &config, &target).await?;
    let statements = prepare_statements(&session, &config, &target).await?;
    Ok(Shared {
        session,
        statements,
        config,
        target,
        lease_lost: AtomicBool::new(false),
        lease_unsure: AtomicBool::new(false),
    })
}

/// Every statement the store runs, prepared once per connection.
async fn prepare_statements(session: &Session, config: &CqlConfig, target: &str) -> Result<Statements, StoreError> {
    let prepare = async |text: &str, consistency: Consistency, idempotent: bool| {
        // Table names are qualified (`{ks}`) rather than set by `USE keyspace`.
        let text = text.replace("{ks}", &config.keyspace);
        let text = text.as_str();
        let mut statement = session
            .prepare(text)
            .await
            .map_err(|e| StoreError::Cql { target: target.to_string(), detail: format!("{text}: {e}") })?;
        statement.set_consistency(consistency);
        statement.set_serial_consistency(Some(SerialConsistency::Serial));
        statement.set_is_idempotent(idempotent);
        Ok::<_, StoreError>(statement)
    };
    use Consistency::{Quorum, Serial};
    let statements = Statements {
        insert_row: prepare(
            "INSERT INTO {ks}.journal (stream, chunk, seq, epoch, record) VALUES (?, ?, ?, ?, ?)",
            Quorum,
            true,
        )
        .await?,
        advance_head: prepare(
            "UPDATE {ks}.journal_head SET head = ? WHERE stream = ? IF epoch = ? AND head = ?",
            Quorum,
            false,
        )
        .await?,
        read_head: prepare("SELECT epoch, head, writer, format FROM {ks}.journal_head WHERE stream = ?", Serial, true)
            .await?,
        read_chunk: {
            let mut s =
                prepare("SELECT seq, epoch, record FROM {ks}.journal WHERE stream = ? AND chunk = ?", Quorum, true)
                    .await?;
            s.set_page_size(REPLAY_PAGE_ROWS);
            s
        },
        init_head: prepare(
            "INSERT INTO {ks}.journal_head (stream, epoch, head, writer, format) VALUES (?, 0, 0, '', ?) IF NOT EXISTS",
            Quorum,
            false,
        )
        .await?,
        bump_epoch: prepare(
            "UPDATE {ks}.journal_head SET epoch = ?, writer = ? WHERE stream = ? IF epoch = ?",
            Quorum,
            false,
        )
        .await?,
        lease_acquire: prepare(
            "INSERT INTO {ks}.writer_lease (stream, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?",
            Quorum,
            false,
        )
        .await?,
        lease_renew: prepare(
            "UPDATE {ks}.writer_lease USING TTL ? SET owner = ? WHERE stream = ? IF owner = ?",
            Quorum,
            false,
        )
        .await?,
        lease_release: prepare("DELETE FROM {ks}.writer_lease WHERE stream = ? IF owner = ?", Quorum, false).await?,
        lease_owner: prepare("SELECT owner FROM {ks}.writer_lease WHERE stream = ?", Serial, true).await?,
        snapshots: super::snapshots::prepare_statements(&prepare).await?,
        archive: super::archive::prepare_statements(&prepare).await?,
    };
    Ok(statements)
}

/// Creates the keyspace and applies the migrations it lacks, in order.
pub(super) async fn migrate(session: &Session, config: &CqlConfig, target: &str) -> Result<(), StoreError> {
    let cql = |detail: String| StoreError::Cql { target: target.to_string(), detail };
    let run =
        async |text: String| session.query_unpaged(text.clone(), ()).await.map_err(|e| cql(format!("{text}: {e}")));
    run(format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
        config.keyspace, config.replication_factor
    ))
    .await?;
    check_replication(session, config, target).await?;
    let ks = &config.keyspace;
    run(format!(
        "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (version int PRIMARY KEY, description text, applied_at timestamp)"
    ))
    .await?;
    let applied = session
        .query_unpaged(format!("SELECT version FROM {ks}.schema_migrations"), ())
        .await
        .map_err(|e| cql(format!("read schema_migrations: {e}")))?
        .into_rows_result()
        .map_err(|e| cql(e.to_string()))?
        .rows::<(i32,)>()
        .map_err(|e| cql(e.to_string()))?
        .map(|row| row.map(|(v,)| v))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|e| cql(e.to_string()))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(&found) = applied.iter().max()
        && found > known
    {
        return Err(StoreError::SchemaTooNew { target: target.to_string(), found, known });
    }
    for (version, description, statements) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for statement in *statements {
            run(statement.replace("{ks}", ks)).await?;
        }
        session
            .query_unpaged(
                format!(
                    "INSERT INTO {ks}.schema_migrations (version, description, applied_at) \
                     VALUES (?, ?, toTimestamp(now())) IF NOT EXISTS"
                ),
                (version, description),
            )
            .await
            .map_err(|e| cql(format!("record migration {version}: {e}")))?;
        tracing::info!(%target, version, description, "schema migration applied");
    }
    session.await_schema_agreement().await.map_err(|e| cql(format!("schema agreement: {e}")))?;
    Ok(())
}

/// An existing keyspace keeps the replication it was created with; an
/// address that asks for another factor is refused, so nobody believes
/// their journal has replicas it does not have.
async fn check_replication(session: &Session, config: &CqlConfig, target: &str) -> Result<(), StoreError> {
    let cql = |detail: String| StoreError::Cql { target: target.to_string(), detail };
    let rows = session
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            (config.keyspace.as_str(),),
        )
        .await
        .map_err(|e| cql(format!("read the keyspace's replication: {e}")))?
        .into_rows_result()
        .map_err(|e| cql(e.to_string()))?;
    let replication = rows
        .maybe_first_row::<(std::collections::HashMap<String, String>,)>()
        .map_err(|e| cql(e.to_string()))?
        .map(|(map,)| map)
        .unwrap_or_default();
    let found = replication.get("replication_factor").and_then(|f| f.parse::<u32>().ok());
    match found {
        Some(found) if found != config.replication_factor && config.replication_factor_asked => {
            Err(StoreError::Address {
                address: target.to_string(),
                reason: format!(
                    "keyspace {ks} exists with replication_factor {found}, but the address asks for {asked}; Ponte does not \
             change an existing keyspace: ALTER KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', \
             'replication_factor': {asked}}} and run a full repair, or drop the option",
                    ks = config.keyspace,
                    asked = config.replication_factor
                ),
            })
        }
        Some(found) if found != config.replication_factor => {
            tracing::info!(%target, replication_factor = found, "using the keyspace's replication factor");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Schema migrations, in order (`{ks}` stands for the keyspace). Never edit
/// a published one: add the next.
pub(super) const MIGRATIONS: &[(i32, &str, &[&str])] = &[
    (
        1,
        "journal, head and writer lease",
        &[
            "CREATE TABLE IF NOT EXISTS {ks}.journal (stream text, chunk bigint, seq bigint, epoch bigint, record blob, \
             PRIMARY KEY ((stream, chunk), seq, epoch)) WITH CLUSTERING ORDER BY (seq ASC, epoch DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.journal_head (stream text PRIMARY KEY, epoch bigint, head bigint, writer text, format bigint)",
            "CREATE TABLE IF NOT EXISTS {ks}.writer_lease (stream text PRIMARY KEY, owner text)",
        ],
    ),
    (
        2,
        "engine snapshots and the journal's first record",
        &[
            "CREATE TABLE IF NOT EXISTS {ks}.snapshots (stream text, records bigint, parts int, bytes bigint, \
             PRIMARY KEY ((stream), records)) WITH CLUSTERING ORDER BY (records DESC)",
            "CREATE TABLE IF NOT EXISTS {ks}.snapshot_parts (stream text, records bigint, part int, data blob, \
             PRIMARY KEY ((stream, records, part)))",
            "CREATE TABLE IF NOT EXISTS {ks}.journal_first (stream text PRIMARY KEY, first bigint)",
        ],
    ),
    (
        3,
        "the archive of transfers that left the engine's memory",
        &[
            "CREATE TABLE IF NOT EXISTS {ks}.archive_transfers (stream text, id text, position bigint, body blob, \
             PRIMARY KEY ((stream, id)))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_cycle (stream text, cycle int, bucket bigint, position bigint, \
             body blob, PRIMARY KEY ((stream, cycle, bucket), position))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_cycle_buckets (stream text, cycle int, bucket bigint, \
             PRIMARY KEY ((stream, cycle), bucket))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_late (stream text, original text, id text, amount bigint, \
             PRIMARY KEY ((stream, original), id))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_late_cycle (stream text, cycle int, original text, id text, \
             amount bigint, PRIMARY KEY ((stream, cycle), original, id))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_written (stream text PRIMARY KEY, written bigint)",
        ],
    ),
    (
        4,
        "the archive written in single-partition batches: ids by minute and shard, cycles in pieces \
         (replaces migration 3's per-transfer tables, never released)",
        &[
            "CREATE TABLE IF NOT EXISTS {ks}.archive_ids (stream text, minute bigint, shard int, id text, \
             position bigint, body blob, PRIMARY KEY ((stream, minute, shard), id))",
            "CREATE TABLE IF NOT EXISTS {ks}.archive_pieces (stream text, cycle int, bucket bigint, first bigint, \
             body blob, PRIMARY KEY ((stream, cycle, bucket), first))",
            "DROP TABLE IF EXISTS {ks}.archive_transfers",
            "DROP TABLE IF EXISTS {ks}.archive_cycle",
        ],
    ),
    (
        5,
        "items of complete envelopes in the archive, in pieces by envelope",
        &["CREATE TABLE IF NOT EXISTS {ks}.archive_envelope_items (stream text, number bigint, first int, \
           body blob, PRIMARY KEY ((stream, number), first))"],
    ),
];
