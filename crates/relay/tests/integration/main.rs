//! The relay end to end, in process: the WHOOP simulator plays WHOOP, reqwest plays the device.
//! Each test runs on SQLite and, when `VITALTRENDS_TEST_POSTGRES_URL` is set, on PostgreSQL.

#[path = "../common/mod.rs"]
mod common;

mod broker;
mod hardening;
mod intake;
mod licences;
mod lifecycle;
mod quota;
mod stream;
