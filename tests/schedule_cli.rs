//! Schedules and configuration input as an operator meets them: five-field cron expressions
//! against a table computed by an independent implementation (croniter,
//! tests/data/crontab/generate.py), `agent --print-schedule`, and bad input to every parser
//! giving a clear error and exit 2, never a panic or a secret.

mod support;

use chrono::{DateTime, Utc};
use consul_snapshot_agent::schedule::crontab::Crontab;
use consul_snapshot_agent::schedule::Schedule;
use support::{describe, run_cli};

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn five_field_expressions_match_an_independent_cron() {
    let text = include_str!("data/crontab/next-runs.json");
    let table: serde_json::Value = serde_json::from_str(text).expect("table");
    let cases = table["cases"].as_array().expect("cases");
    assert!(cases.len() >= 100, "the table has {} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let expr = case["expr"].as_str().expect("expr");
        let zone = case["zone"].as_str().expect("zone");
        let after = time(case["after"].as_str().expect("after"));
        let want: Vec<DateTime<Utc>> = case["next"]
            .as_array()
            .expect("next")
            .iter()
            .map(|t| time(t.as_str().expect("t")))
            .collect();
        let s = Schedule::cron(expr, Some(zone)).expect(expr);
        // upcoming() of a cron schedule starts strictly after `after`, as croniter does.
        let got = s.upcoming(after, want.len());
        if got != want {
            wrong.push(format!(
                "{expr:?} in {zone} after {after}: got {got:?}, croniter {want:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn print_schedule_lists_future_runs_that_match_the_expression() {
    let out = run_cli(&[
        "agent",
        "--cron",
        "*/5 3 * * mon-fri",
        "--print-schedule",
        "12",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let tab = Crontab::parse("*/5 3 * * mon-fri").expect("tab");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 12, "{}", describe(&out));
    let times: Vec<DateTime<Utc>> = lines.iter().map(|l| time(l)).collect();
    let now = Utc::now();
    for (i, t) in times.iter().enumerate() {
        assert!(lines[i].ends_with('Z'), "UTC: {}", lines[i]);
        assert!(tab.matches(t.naive_utc()), "{t} does not match");
        assert!(
            *t > now - chrono::Duration::minutes(1),
            "{t} is in the past"
        );
        if i > 0 {
            assert!(times[i - 1] < *t, "not increasing at {i}");
            // Nothing matching is skipped between two printed runs.
            let mut m = times[i - 1] + chrono::Duration::minutes(1);
            while m < *t {
                assert!(!tab.matches(m.naive_utc()), "{m} skipped");
                m += chrono::Duration::minutes(1);
            }
        }
    }
    // An interval schedule: now, then every interval.
    let out = run_cli(&["agent", "--interval", "90m", "--print-schedule", "3"]);
    let times: Vec<DateTime<Utc>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(time)
        .collect();
    assert_eq!(times.len(), 3, "{}", describe(&out));
    assert_eq!(times[2] - times[1], chrono::Duration::minutes(90));
}

#[test]
fn bad_schedules_and_durations_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("agent.json");
    std::fs::write(
        &file,
        r#"{"snapshot_agent": {"snapshot": {"interval": "99999999999999999999s"}}}"#,
    )
    .expect("write");
    let file = file.to_string_lossy().to_string();
    for (args, want) in [
        (
            vec![
                "agent",
                "--interval",
                "99999999999999999999s",
                "--print-config",
            ],
            "too long",
        ),
        (
            vec!["agent", "--config-file", &file, "--print-config"],
            "too long",
        ),
        (
            vec!["agent", "--keep-within", "1y", "--print-config"],
            "unknown unit",
        ),
        (
            vec!["agent", "--read-timeout=-5s", "--print-config"],
            "negative",
        ),
        (
            vec!["agent", "--cron", "0 3 * * 8", "--print-schedule", "1"],
            "day of week: 8",
        ),
        (
            vec!["agent", "--cron", "0 3 * *", "--print-schedule", "1"],
            "expected 5 fields",
        ),
        (
            vec!["agent", "--once", "--print-schedule", "1"],
            "no schedule",
        ),
        // Consul reads a TTL of 0 as "never expires"; it accepts 10s to 24h.
        (
            vec!["agent", "--session-ttl", "0s", "--print-config"],
            "from 10s (its session_ttl_min",
        ),
        (
            vec!["agent", "--session-ttl", "5s", "--print-config"],
            "to 24h",
        ),
        (
            vec!["agent", "--session-ttl", "48h", "--print-config"],
            "is 2days",
        ),
        (
            vec![
                "agent",
                "--session-ttl",
                "0s",
                "--session-ttl-min",
                "0s",
                "--print-config",
            ],
            "never expires",
        ),
    ] {
        let out = run_cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(err.contains(want), "{args:?}: {}", describe(&out));
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{}",
            describe(&out)
        );
    }
}

#[test]
fn a_config_file_error_never_prints_the_secret_on_its_line() {
    let dir = tempfile::tempdir().expect("dir");
    for (name, text, secret) in [
        (
            "a.toml",
            "[snapshot_agent]\ntoken = \"abc-0123-secret\n",
            "abc-0123-secret",
        ),
        (
            "b.toml",
            "[snapshot_agent.aws_storage]\nsecret_access_key = \"AKsecretXYZ\" junk\n",
            "AKsecretXYZ",
        ),
        (
            "c.json",
            "{\"snapshot_agent\": {\"token\": \"tok-zzz-999\n}}",
            "tok-zzz-999",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        let out = run_cli(&[
            "agent",
            "--config-file",
            &p.to_string_lossy(),
            "--print-config",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert!(err.contains("line 2"), "position: {}", describe(&out));
        assert!(!err.contains(secret), "secret shown: {}", describe(&out));
    }
}

#[test]
fn every_refused_key_of_a_file_is_reported_in_one_run() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("agent.json");
    std::fs::write(
        &file,
        "{\"snapshot_agent\": {\n  \"snapshot\": {\"intervall\": \"1h\"},\n  \"token\": \"<redacted>\",\n  \"aws_storage\": {\"s3_buckett\": \"b\"}\n}}\n",
    )
    .expect("write");
    let f = file.to_string_lossy().to_string();
    let out = run_cli(&["agent", "--config-file", &f, "--print-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    for want in [
        "line 2, column 16, key snapshot_agent.snapshot.intervall",
        "(did you mean `interval`?)",
        "line 3, column 3, key snapshot_agent.token: this is a redacted secret",
        "key snapshot_agent.aws_storage.s3_buckett",
        "(did you mean `s3_bucket`?)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    // A local path a bucket overrides is named, with the bucket's key.
    std::fs::write(
        &file,
        r#"{"snapshot_agent": {"local_storage": {"path": "/srv/backups"}, "aws_storage": {"s3_bucket": "b"}}}"#,
    )
    .expect("write");
    let out = run_cli(&["agent", "--config-file", &f, "--print-config"]);
    assert!(out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "local_storage.path (/srv/backups) is ignored because aws_storage.s3_bucket is set"
        ),
        "{err}"
    );
}
