//! Copying a whole database into another, empty one: how `sealpost admin migrate` moves a SQLite
//! deployment's rows into PostgreSQL.
//!
//! The tables are read from the source's own catalogue (so a table added by a later migration is
//! copied with no change here), parents before children by their foreign keys, every row as it
//! is, each value converted to its target column's type: SQLite keeps booleans as integers and
//! PostgreSQL as `BOOLEAN`, so the target's catalogue says what each column takes. The source is
//! read in one read transaction, so the copy is of one moment; the target is written in one write
//! transaction that first checks that every table is empty, so the copy is whole or absent, and
//! a second copy into the same database is refused. Afterwards PostgreSQL's identity sequences
//! are moved past the copied keys, and the log's sequencer lease and the duties (the sweeper),
//! which named a gateway of the source, are let go. `_sqlx_migrations` is not copied: the target
//! has its own schema history.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use futures_util::TryStreamExt as _;
use sqlx::AnyConnection;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Row as _, ValueRef as _};

use super::{Dialect, Store, StoreError};

/// Values bound per `INSERT` at most (PostgreSQL takes 65,535, SQLite 32,766).
const BIND_LIMIT: usize = 30_000;
/// Rows per `INSERT` at most.
const ROWS_PER_INSERT: usize = 500;

/// How many rows went into one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// The table.
    pub name: String,
    /// Its rows.
    pub rows: u64,
}

/// A column's type in the target, as far as a copy needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Bool,
    Int,
    Real,
    Text,
    Blob,
}

impl ColumnType {
    /// The type a column declared as `declared` takes: PostgreSQL's `data_type`, or SQLite's
    /// declared type by its affinity rules (<https://www.sqlite.org/datatype3.html#affname>).
    fn of(dialect: Dialect, declared: &str) -> Option<Self> {
        let t = declared.to_ascii_lowercase();
        match dialect {
            Dialect::Postgres => match t.as_str() {
                "boolean" => Some(Self::Bool),
                "smallint" | "integer" | "bigint" => Some(Self::Int),
                "real" | "double precision" => Some(Self::Real),
                "text" | "character varying" | "character" => Some(Self::Text),
                "bytea" => Some(Self::Blob),
                _ => None,
            },
            Dialect::Sqlite if t.contains("int") => Some(Self::Int),
            Dialect::Sqlite if t.contains("char") || t.contains("clob") || t.contains("text") => Some(Self::Text),
            Dialect::Sqlite if t.is_empty() || t.contains("blob") => Some(Self::Blob),
            Dialect::Sqlite if t.contains("real") || t.contains("floa") || t.contains("doub") => Some(Self::Real),
            Dialect::Sqlite => Some(Self::Int),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bool => "boolean",
            Self::Int => "integer",
            Self::Real => "real",
            Self::Text => "text",
            Self::Blob => "blob",
        }
    }
}

/// One value read from the source.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The value in column `i` of a source row, whatever its storage class.
    fn read(row: &AnyRow, i: usize) -> Result<Self, sqlx::Error> {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Self::Null);
        }
        Ok(match raw.type_info().kind() {
            AnyTypeInfoKind::Bool => Self::Int(i64::from(row.try_get::<bool, _>(i)?)),
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Self::Real(row.try_get(i)?),
            AnyTypeInfoKind::Text => Self::Text(row.try_get(i)?),
            AnyTypeInfoKind::Blob => Self::Blob(row.try_get(i)?),
            AnyTypeInfoKind::Null => Self::Null,
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                Self::Int(row.try_get(i)?)
            }
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Int(_) => "integer",
            Self::Real(_) => "real",
            Self::Text(_) => "text",
            Self::Blob(_) => "blob",
        }
    }
}

/// A bound value in the target's type.
enum Bound {
    Bool(Option<bool>),
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Bound {
    /// `cell` converted for a column of type `ty`, or `None` when it cannot be.
    fn convert(cell: Cell, ty: ColumnType) -> Result<Self, Cell> {
        Ok(match (ty, cell) {
            (ColumnType::Bool, Cell::Null) => Self::Bool(None),
            (ColumnType::Bool, Cell::Int(i)) => Self::Bool(Some(i != 0)),
            (ColumnType::Int, Cell::Null) => Self::Int(None),
            (ColumnType::Int, Cell::Int(i)) => Self::Int(Some(i)),
            (ColumnType::Real, Cell::Null) => Self::Real(None),
            (ColumnType::Real, Cell::Real(r)) => Self::Real(Some(r)),
            #[expect(clippy::cast_precision_loss, reason = "SQLite itself stores such values as reals")]
            (ColumnType::Real, Cell::Int(i)) => Self::Real(Some(i as f64)),
            (ColumnType::Text, Cell::Null) => Self::Text(None),
            (ColumnType::Text, Cell::Text(t)) => Self::Text(Some(t)),
            (ColumnType::Blob, Cell::Null) => Self::Blob(None),
            (ColumnType::Blob, Cell::Blob(b)) => Self::Blob(Some(b)),
            (ColumnType::Blob, Cell::Text(t)) => Self::Blob(Some(t.into_bytes())),
            (_, other) => return Err(other),
        })
    }
}

/// `name` as a quoted SQL identifier (names come from the databases' own catalogues).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Copies every row of this SQLite database into `target`, an empty database (as
    /// [`Store::connect`] leaves a new one), in one transaction there; see the module's text.
    /// Refuses, copying nothing, when any table of `target` holds a row.
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<CopiedTable>, StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Err(StoreError::Db(sqlx::Error::Configuration("only a SQLite database can be copied".into())));
        }
        // A deferred transaction: its first read fixes the moment the whole copy is of.
        let mut source = self.pool.begin().await?;
        let tables = sqlite_copy_order(&mut source).await?;
        let mut tx = target.write().await?;
        for table in tables_of(&mut tx, target.dialect).await? {
            let rows = count_rows(&mut tx, &table).await?;
            if rows > 0 {
                return Err(StoreError::NotEmpty { table, rows });
            }
        }
        let mut copied = Vec::with_capacity(tables.len());
        for table in tables {
            let columns = sqlite_columns(&mut source, &table).await?;
            let types = column_types(&mut tx, target.dialect, &table).await?;
            let types = columns
                .iter()
                .map(|c| {
                    types
                        .get(c)
                        .copied()
                        .ok_or_else(|| StoreError::MissingColumn { table: table.clone(), column: c.clone() })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rows = copy_table(&mut source, &mut tx, &table, &columns, &types).await?;
            copied.push(CopiedTable { name: table, rows });
        }
        if target.dialect == Dialect::Postgres {
            advance_sequences(&mut tx).await?;
        }
        // Nobody works on the new database yet: the sequencer lease and the duties the source's
        // gateway held are free for whichever gateway starts first.
        sqlx::query("UPDATE log_state SET holder = NULL, lease_until = 0").execute(&mut *tx).await?;
        sqlx::query("UPDATE duties SET until = 0").execute(&mut *tx).await?;
        tx.commit().await?;
        source.rollback().await?;
        Ok(copied)
    }

    /// How many rows each table holds (`_sqlx_migrations` aside), by name.
    pub async fn row_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut counts = BTreeMap::new();
        for table in tables_of(&mut conn, self.dialect).await? {
            let rows = count_rows(&mut conn, &table).await?;
            counts.insert(table, rows);
        }
        Ok(counts)
    }
}

/// The tables of a database, `_sqlx_migrations` and SQLite's own aside.
async fn tables_of(conn: &mut AnyConnection, dialect: Dialect) -> Result<Vec<String>, StoreError> {
    let sql = match dialect {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' \
             AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_all(&mut *conn).await?)
}

async fn count_rows(conn: &mut AnyConnection, table: &str) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
    Ok(u64::try_from(rows).unwrap_or_default())
}

/// The SQLite database's tables, each after every table its foreign keys name.
async fn sqlite_copy_order(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for table in tables_of(conn, Dialect::Sqlite).await? {
        let named: Vec<String> = sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
            .bind(&table)
            .fetch_all(&mut *conn)
            .await?;
        parents.insert(table.clone(), named.into_iter().filter(|p| *p != table).collect());
    }
    let mut order: Vec<String> = Vec::with_capacity(parents.len());
    while order.len() < parents.len() {
        let ready: Vec<String> = parents
            .iter()
            .filter(|(t, ps)| !order.contains(t) && ps.iter().all(|p| order.contains(p) || !parents.contains_key(p)))
            .map(|(t, _)| t.clone())
            .collect();
        if ready.is_empty() {
            let left = parents.keys().filter(|t| !order.contains(t)).cloned().collect();
            return Err(StoreError::ForeignKeyCycle(left));
        }
        order.extend(ready);
    }
    Ok(order)
}

async fn sqlite_columns(conn: &mut AnyConnection, table: &str) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
        .bind(table)
        .fetch_all(&mut *conn)
        .await?)
}

/// The type each column of `table` takes in the target.
async fn column_types(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &str,
) -> Result<BTreeMap<String, ColumnType>, StoreError> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT name, type FROM pragma_table_info($1)",
        Dialect::Postgres => {
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(table).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|(column, declared)| match ColumnType::of(dialect, &declared) {
            Some(ty) => Ok((column, ty)),
            None => Err(StoreError::UnknownColumnType { table: table.to_owned(), column, declared }),
        })
        .collect()
}

/// Streams `table`'s rows from `source` into `target` in multi-row `INSERT`s; returns how many.
async fn copy_table(
    source: &mut AnyConnection,
    target: &mut AnyConnection,
    table: &str,
    columns: &[String],
    types: &[ColumnType],
) -> Result<u64, StoreError> {
    let list = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let per_insert = (BIND_LIMIT / columns.len().max(1)).clamp(1, ROWS_PER_INSERT);
    let select = format!("SELECT {list} FROM {}", quote(table));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *source);
    let mut batch: Vec<Vec<Bound>> = Vec::with_capacity(per_insert);
    let mut copied = 0;
    while let Some(row) = rows.try_next().await? {
        let mut values = Vec::with_capacity(columns.len());
        for (i, (column, ty)) in columns.iter().zip(types).enumerate() {
            let bound = Bound::convert(Cell::read(&row, i)?, *ty).map_err(|cell| StoreError::Unconvertible {
                table: table.to_owned(),
                column: column.clone(),
                from: cell.kind(),
                to: ty.name(),
            })?;
            values.push(bound);
        }
        batch.push(values);
        if batch.len() == per_insert {
            copied += insert(target, table, &list, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        copied += insert(target, table, &list, batch).await?;
    }
    Ok(copied)
}

async fn insert(
    target: &mut AnyConnection,
    table: &str,
    list: &str,
    batch: Vec<Vec<Bound>>,
) -> Result<u64, StoreError> {
    let mut sql = format!("INSERT INTO {} ({list}) VALUES ", quote(table));
    let mut n = 0;
    for (r, row) in batch.iter().enumerate() {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..row.len() {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    let rows = batch.len() as u64;
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for value in batch.into_iter().flatten() {
        query = match value {
            Bound::Bool(v) => query.bind(v),
            Bound::Int(v) => query.bind(v),
            Bound::Real(v) => query.bind(v),
            Bound::Text(v) => query.bind(v),
            Bound::Blob(v) => query.bind(v),
        };
    }
    query.execute(&mut *target).await?;
    Ok(rows)
}

/// Moves every PostgreSQL identity or serial sequence past the largest key copied into its
/// column, so the next row the gateway adds gets a new key.
async fn advance_sequences(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (table, column) in columns {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
            quote(&column),
            quote(&table)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(quote(&table)).bind(&column).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::ids::BearerSecret;

    #[test]
    fn declared_types_map_to_what_a_copy_binds() {
        assert_eq!(ColumnType::of(Dialect::Postgres, "boolean"), Some(ColumnType::Bool));
        assert_eq!(ColumnType::of(Dialect::Postgres, "bigint"), Some(ColumnType::Int));
        assert_eq!(ColumnType::of(Dialect::Postgres, "bytea"), Some(ColumnType::Blob));
        assert_eq!(ColumnType::of(Dialect::Postgres, "jsonb"), None);
        assert_eq!(ColumnType::of(Dialect::Sqlite, "INTEGER"), Some(ColumnType::Int));
        assert_eq!(ColumnType::of(Dialect::Sqlite, "BIGINT"), Some(ColumnType::Int));
        assert_eq!(ColumnType::of(Dialect::Sqlite, "TEXT"), Some(ColumnType::Text));
        assert_eq!(ColumnType::of(Dialect::Sqlite, "BLOB"), Some(ColumnType::Blob));
    }

    #[test]
    fn integers_become_booleans_and_nothing_else_changes_kind() {
        assert!(matches!(Bound::convert(Cell::Int(1), ColumnType::Bool), Ok(Bound::Bool(Some(true)))));
        assert!(matches!(Bound::convert(Cell::Int(0), ColumnType::Bool), Ok(Bound::Bool(Some(false)))));
        assert!(matches!(Bound::convert(Cell::Null, ColumnType::Text), Ok(Bound::Text(None))));
        assert!(matches!(Bound::convert(Cell::Text("x".into()), ColumnType::Int), Err(Cell::Text(_))));
    }

    #[tokio::test]
    async fn a_copy_is_whole_and_a_second_one_into_the_same_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = Store::open(&dir.path().join("source.db")).await.expect("source");
        let now = Utc::now();
        source
            .bootstrap(&BearerSecret::generate("sp_").hash(), now + chrono::TimeDelta::days(1), now)
            .await
            .expect("bootstrap")
            .expect("first");
        let target = Store::open(&dir.path().join("target.db")).await.expect("target");

        let copied = source.copy_into(&target).await.expect("copy");
        let order: Vec<&str> = copied.iter().map(|t| t.name.as_str()).collect();
        let at = |name: &str| order.iter().position(|t| *t == name).expect(name);
        assert!(at("orgs") < at("users") && at("users") < at("api_tokens") && at("uploads") < at("upload_answers"));
        assert_eq!(source.row_counts().await.expect("counts"), target.row_counts().await.expect("counts"));
        assert_eq!(target.row_counts().await.expect("counts")["audit_events"], 3);

        let refused = source.copy_into(&target).await.expect_err("the target is not empty any more");
        assert!(matches!(&refused, StoreError::NotEmpty { table, rows: 1 } if table == "api_tokens"), "{refused:?}");
        assert_eq!(refused.to_string(), "the target database is not empty: table `api_tokens` has 1 row(s)");
    }
}
