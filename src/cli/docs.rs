//! The parts of `--help` and the man pages that clap does not derive from the arguments:
//! EXAMPLES (the common invocations), EXIT STATUS and ENVIRONMENT, written once here for both.

/// The common invocations of a command (`""` is the program itself), as (command line, what
/// it does).
fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "" => &[
            ("consul-snapshot-agent agent --config-file /etc/consul-snapshot-agent/agent.json", "run the agent with an Enterprise snapshot_agent file"),
            ("consul-snapshot-agent agent --once --local-path /var/backups/consul", "take one verified backup (cron)"),
            ("consul-snapshot-agent list --summary --max-age 2h --aws-s3-bucket backups", "check that every datacenter has a fresh backup"),
            ("consul-snapshot-agent restore --latest --local-path /var/backups/consul", "restore the newest backup, after confirmation"),
        ],
        "agent" => &[
            ("consul-snapshot-agent agent --once --local-path /var/backups/consul --retain 48", "one backup, keep the newest 48"),
            ("consul-snapshot-agent agent --interval 1h --aws-s3-bucket backups --aws-s3-region eu-west-1", "every hour to S3, leader-elected"),
            ("consul-snapshot-agent agent --login-auth-method kubernetes --login-bearer-token-file /var/run/secrets/consul/token", "log in with an auth method instead of a token"),
            ("consul-snapshot-agent agent --config-file agent.json --print-config", "show the effective configuration, secrets redacted"),
        ],
        "save" => &[
            ("consul-snapshot-agent save backup.snap", "save and verify a snapshot, as consul snapshot save"),
            ("consul-snapshot-agent save --stale backup.snap", "let a follower answer (no leader needed)"),
        ],
        "restore" => &[
            ("consul-snapshot-agent restore --latest --local-path /var/backups/consul", "the newest usable backup, after confirmation"),
            ("consul-snapshot-agent restore --before 2026-11-21T19:00:00Z --aws-s3-bucket backups --dry-run", "show what would be restored"),
            ("consul-snapshot-agent restore backup.snap --yes", "a local file, without asking"),
            ("consul-snapshot-agent restore --latest --kv-prefix app/ --dry-run --local-path /var/backups/consul", "plan bringing back the KV subtree app/ only"),
            ("consul-snapshot-agent restore --latest --kv-prefix app/ --delete-extra --local-path /var/backups/consul", "roll the subtree app/ back exactly, nothing else"),
        ],
        "kv-export" => &[
            ("consul-snapshot-agent kv-export --latest --prefix app/ -o app.json --local-path /var/backups/consul", "the subtree app/ of the newest backup"),
            ("consul-snapshot-agent kv-export backup.snap --prefix '' | consul kv import -", "every key of a file into a cluster"),
        ],
        "diff" => &[
            ("consul-snapshot-agent diff latest live --local-path /var/backups/consul", "what changed since the newest backup"),
            ("consul-snapshot-agent diff before:2026-11-21T19:00:00Z latest --output json --aws-s3-bucket backups", "between two backups, for a script"),
        ],
        "list" => &[
            ("consul-snapshot-agent list --local-path /var/backups/consul", "every backup, oldest first"),
            ("consul-snapshot-agent list --summary --max-age 2h --expect dc1,dc2 --aws-s3-bucket backups", "the fleet view; exit 1 names stale or missing sites"),
            ("consul-snapshot-agent list --verify --age-identity key.txt --aws-s3-bucket backups", "read every backup back and verify it"),
        ],
        "prune" => &[
            ("consul-snapshot-agent prune --retain 48 --dry-run --local-path /var/backups/consul", "show what retention would delete"),
            ("consul-snapshot-agent prune --acknowledge-anomaly KEY --local-path /var/backups/consul", "accept a shrink-guard anomaly as the truth"),
        ],
        "verify" => &[("consul-snapshot-agent verify backup.snap", "every check Consul makes before a restore")],
        "inspect" => &[
            ("consul-snapshot-agent inspect backup.snap", "records and bytes per type"),
            ("consul-snapshot-agent inspect --kvdetails --kvdepth 2 backup.snap", "and per KV prefix"),
        ],
        "drill" => &[(
            "consul-snapshot-agent drill --latest --local-path /var/backups/consul --target-http-addr scratch:8500",
            "restore the newest backup into a scratch cluster and compare",
        )],
        "peers-json" => &[
            ("consul-snapshot-agent peers-json --latest --local-path /var/backups/consul", "peers.json from the newest backup"),
            ("consul-snapshot-agent peers-json --from-consul 10.0.0.5:8500 --exclude 10.0.0.7:8300", "from a live server, without a lost one"),
        ],
        _ => &[],
    }
}

/// What the exit codes mean (every command).
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "success"),
    ("1", "failure: the error is printed once on stderr (for list --summary: a stale or missing datacenter; for drill: a difference)"),
    ("2", "bad usage: a bad flag, value or configuration file"),
];

/// The environment variables read, as the consul CLI reads them (flags win).
const ENVIRONMENT: &[(&str, &str)] = &[
    ("CONSUL_HTTP_ADDR", "the Consul agent: host:port, http(s)://host:port or unix:///path"),
    ("CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE", "the ACL token, or a file holding it"),
    ("CONSUL_HTTP_AUTH", "HTTP basic auth, user[:password]"),
    ("CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY", "use HTTPS; false skips certificate verification"),
    ("CONSUL_CACERT, CONSUL_CAPATH", "the CA certificate (file or directory) of Consul's TLS"),
    ("CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY", "a client certificate for verify_incoming"),
    ("CONSUL_TLS_SERVER_NAME", "the name to verify Consul's certificate against"),
    ("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE", "S3 credentials, read by the AWS credential chain"),
    ("AWS_REGION, AWS_S3_ENDPOINT", "the S3 region and a custom endpoint (MinIO, Garage, Ceph)"),
    ("CONSUL_SNAPSHOT_AGE_IDENTITY", "the age identity file that decrypts encrypted backups"),
];

/// The `--help` epilogue of `command` (`""`: the program): examples, exit status, environment.
pub fn help(command: &str) -> String {
    let mut out = String::new();
    let ex = examples(command);
    if !ex.is_empty() {
        out.push_str("Examples:\n");
        for (line, what) in ex {
            out.push_str(&format!("  # {what}\n  {line}\n"));
        }
        out.push('\n');
    }
    out.push_str("Exit status:\n");
    for (code, what) in EXIT_STATUS {
        out.push_str(&format!("  {code}  {what}\n"));
    }
    out.push_str("\nEnvironment:\n");
    for (name, what) in ENVIRONMENT {
        out.push_str(&format!("  {name}\n      {what}\n"));
    }
    out
}

/// Escapes text for roff: backslashes and hyphens (so they print as typed), and a leading
/// dot or quote.
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The EXAMPLES, EXIT STATUS and ENVIRONMENT sections of the man page of `command`, in roff.
pub fn man_sections(command: &str) -> String {
    let mut out = String::new();
    let ex = examples(command);
    if !ex.is_empty() {
        out.push_str(".SH EXAMPLES\n");
        for (line, what) in ex {
            out.push_str(&format!(".TP\n{}\n{}\n", roff(what), roff(line)));
        }
    }
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        out.push_str(&format!(".TP\n{code}\n{}\n", roff(what)));
    }
    out.push_str(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        out.push_str(&format!(".TP\n{}\n{}\n", roff(name), roff(what)));
    }
    out
}

/// `cmd` with the epilogue of [`help`] on it and on each of its subcommands.
pub fn with_help(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.after_long_help(help(""));
    for name in names {
        let text = help(&name);
        cmd = cmd.mut_subcommand(name, |s| s.after_long_help(text));
    }
    cmd
}
