//! The backend harnesses work against the real servers: PostgreSQL 15 that stops and starts
//! again on its port, and a three-node Garage cluster that keeps serving with one node down.
//! Missing PostgreSQL or Garage fails these tests (see `common::require_tool`).

use std::io::ErrorKind;
use std::net::TcpStream;

use crate::common::garage::GarageCluster;
use crate::common::postgres::PgCluster;

/// psql's answer to `sql`, trimmed; panics with psql's error if it failed.
#[track_caller]
fn query(pg: &PgCluster, database: &str, sql: &str) -> String {
    let out = pg.psql(database, sql);
    assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn postgres_answers_refuses_connections_when_stopped_and_keeps_its_data_across_a_restart() {
    let Some(pg) = PgCluster::start() else { return };
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"), "{}", pg.url());
    assert!(pg.url().ends_with("/sealpost"), "{}", pg.url());
    assert_eq!(query(&pg, "sealpost", "SELECT 1"), "1");
    query(&pg, "sealpost", "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)");

    pg.stop();
    let refused = TcpStream::connect(pg.addr()).expect_err("nothing listens on a stopped cluster's port");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let out = pg.psql("sealpost", "SELECT 1");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Connection refused"), "{out:?}");

    pg.start_again();
    assert_eq!(query(&pg, "sealpost", "SELECT n FROM kept"), "42");

    let addr = pg.addr();
    drop(pg);
    let refused = TcpStream::connect(addr).expect_err("a dropped cluster is stopped");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn shared_postgres_gives_each_test_a_database_of_its_own() {
    let Some(pg) = PgCluster::shared() else { return };
    let a = pg.new_database("harness_shared_a");
    let b = pg.new_database("harness_shared_b");
    assert_eq!(a, pg.url_of("harness_shared_a"));
    assert_ne!(a, b);
    query(pg, "harness_shared_a", "CREATE TABLE only_in_a (n int)");
    assert_eq!(query(pg, "harness_shared_a", "SELECT count(*) FROM only_in_a"), "0");
    let out = pg.psql("harness_shared_b", "SELECT count(*) FROM only_in_a");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"), "{out:?}");
    assert!(std::ptr::eq(pg, PgCluster::shared().unwrap()), "one cluster per test process");
}

#[test]
fn garage_keeps_reading_and_writing_with_one_node_down_and_not_with_two() {
    let Some(garage) = GarageCluster::start() else { return };
    assert_eq!(garage.bucket(), "sealpost");
    assert_eq!(garage.blob_store(), "s3://sealpost");
    assert_eq!(garage.endpoint(), garage.node_endpoint(1));
    let names: Vec<String> = garage.gateway_env().into_iter().map(|(k, _)| k).collect();
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL", "SEALPOST_BLOB_STORE"]
    {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }

    // All three nodes up: written through node 1, read through each node.
    assert_eq!(garage.s3(1, "PUT", "three-up", Some(b"written with three nodes")).0, 200);
    for node in [1, 2, 3] {
        assert_eq!(
            garage.s3(node, "GET", "three-up", None),
            (200, b"written with three nodes".to_vec()),
            "node {node}"
        );
    }

    // Node 3 down: two of three copies still make the quorum, for reads and for writes.
    garage.stop_node(3);
    assert!(garage.status().contains("node 3: stopped"), "{}", garage.status());
    assert_eq!(garage.s3(1, "GET", "three-up", None), (200, b"written with three nodes".to_vec()));
    assert_eq!(garage.s3(1, "PUT", "two-up", Some(b"written with two nodes")).0, 200);
    assert_eq!(garage.s3(2, "GET", "two-up", None), (200, b"written with two nodes".to_vec()));

    // Node 2 down as well: a lone node has no quorum, so the cluster really keeps three copies.
    garage.stop_node(2);
    let (status, body) = garage.s3(1, "PUT", "one-up", Some(b"must not be acknowledged"));
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));

    // Both back: node 3 serves what was written while it was down.
    garage.start_node(2);
    garage.start_node(3);
    assert_eq!(garage.s3(3, "GET", "two-up", None), (200, b"written with two nodes".to_vec()));
    let (status, listing) = garage.s3(3, "GET", "?list-type=2", None);
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(status, 200, "{listing}");
    assert!(listing.contains("<Key>three-up</Key>") && listing.contains("<Key>two-up</Key>"), "{listing}");

    let endpoint = garage.endpoint().trim_start_matches("http://").to_owned();
    drop(garage);
    let refused = TcpStream::connect(endpoint).expect_err("a dropped cluster is stopped");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}
