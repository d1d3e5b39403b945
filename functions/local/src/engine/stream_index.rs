//! Indexes the embedded engine's stream-record table lacks, added to its SQLite file at start.
//!
//! dynoxide 3.2 keeps a table's DynamoDB Streams records in one SQLite table, `_stream_records`, with no
//! index but its row id. Every write to a table with a stream asks for the next sequence number with
//! `MAX(CAST(sequence_number AS INTEGER)) … WHERE table_name = ?`, and every `GetRecords` filters and orders
//! by the same expression: both read every stream record the file holds (24 hours of them). Measured with the
//! default benchmark (docs/events.md, "Cost on the write path"): writes became 5–25× slower as the stream grew.
//! Two expression indexes turn both into index seeks. The engine's own statements are unchanged; SQLite
//! picks the indexes because their expressions are exactly the ones those statements use (a test below
//! checks the query plans, so an engine upgrade that rewrites them is noticed).
//! One statement stays a walk of the index: `DescribeStream`'s `MIN(…), MAX(…)` over a shard (two
//! aggregates in one statement, which SQLite does not answer by seeking both ends), so its cost grows with
//! the records kept; the events consumer describes the stream rarely for that reason
//! (`scim_core::events::consumer::DESCRIBE_EVERY`).
//!
//! Why by hand: the engine offers no way to declare indexes on its internal tables; a second, short-lived
//! SQLite connection (the `rusqlite` the engine itself links) creates them once, before the server serves.
//! `CREATE INDEX IF NOT EXISTS` makes it a no-op at later starts. Imports nothing of the crate.

use std::path::Path;

/// The statements, in order; each is idempotent.
pub const STATEMENTS: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS scim_stream_records_seq ON _stream_records (table_name, CAST(sequence_number AS INTEGER))",
    "CREATE INDEX IF NOT EXISTS scim_stream_records_shard_seq ON _stream_records (table_name, shard_id, CAST(sequence_number AS INTEGER))",
];

/// Add the indexes to the engine's SQLite file at `db_file` (opened by the engine already, so the table exists).
pub fn ensure(db_file: &Path) -> Result<(), String> {
    let conn = rusqlite::Connection::open(db_file).map_err(|e| {
        format!(
            "cannot open {} to index its stream records: {e}",
            db_file.display()
        )
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    for sql in STATEMENTS {
        conn.execute_batch(sql)
            .map_err(|e| format!("cannot index the embedded engine's stream records: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.join(" | ")
    }

    #[test]
    fn the_engines_stream_queries_use_the_indexes() {
        let dir = std::env::temp_dir().join(format!("scim-stream-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("engine.sqlite");
        let _ = std::fs::remove_file(&file);
        // The engine makes its schema when it opens the file.
        drop(dynoxide::Database::new(file.to_str().unwrap()).unwrap());
        // The engine's two statements, as dynoxide 3.2 writes them.
        let next_seq = "SELECT COALESCE(MAX(CAST(sequence_number AS INTEGER)), 0) + 1 FROM _stream_records WHERE table_name = 't'";
        let records = "SELECT event_name FROM _stream_records WHERE table_name = 't' AND shard_id = 's' AND CAST(sequence_number AS INTEGER) > 5 ORDER BY CAST(sequence_number AS INTEGER) ASC LIMIT 10";
        let before = plan(&rusqlite::Connection::open(&file).unwrap(), records);
        assert!(
            before.contains("SCAN"),
            "without the indexes the engine scans: {before}"
        );
        ensure(&file).unwrap();
        ensure(&file).unwrap(); // idempotent
        let conn = rusqlite::Connection::open(&file).unwrap();
        let (a, b) = (plan(&conn, next_seq), plan(&conn, records));
        assert!(
            a.contains("INDEX scim_stream_records_seq"),
            "next sequence number: {a}"
        );
        assert!(
            b.contains("INDEX scim_stream_records_shard_seq")
                && !b.contains("SCAN")
                && !b.contains("TEMP B-TREE"),
            "GetRecords: {b}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
