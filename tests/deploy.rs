//! Everything in deploy/ parses, and says what it must (non-root, replicas, one-shot, ACLs).

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn yaml(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy(path)).expect("read");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn compose_file_parses_and_has_consul_minio_and_the_agent() {
    let docs = yaml("docker-compose.yml");
    let services = &docs[0]["services"];
    for s in ["consul", "minio", "agent"] {
        assert!(!services[s].is_badvalue(), "service {s} missing");
    }
    let cmd: Vec<&str> = services["agent"]["command"]
        .as_vec()
        .expect("command")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(cmd[0], "agent");
    assert!(cmd
        .iter()
        .any(|a| a.starts_with("--aws-s3-endpoint=http://minio")));
}

#[test]
fn the_image_builds_the_agent_alone_from_the_whole_workspace() {
    let docker = std::fs::read_to_string(deploy("Dockerfile")).expect("read");
    let build = docker
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(build.contains("--no-default-features"), "{build}");
    for dir in ["crates", "src"] {
        assert!(
            docker.contains(&format!("COPY {dir} ./{dir}")),
            "the image copies {dir}/"
        );
    }
}

#[test]
fn kubernetes_manifests_parse() {
    let dep = &yaml("kubernetes/deployment.yaml")[0];
    assert_eq!(dep["kind"].as_str(), Some("Deployment"));
    assert_eq!(dep["spec"]["replicas"].as_i64(), Some(2));
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    // Restarts on /live only; /health (503 while the agent cannot store) is readiness.
    assert_eq!(
        pod["containers"][0]["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/live")
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    let cron = &yaml("kubernetes/cronjob.yaml")[0];
    assert_eq!(cron["kind"].as_str(), Some("CronJob"));
    let args: Vec<&str> = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        ["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(args.contains(&"--once"));
    let cm = yaml("kubernetes/configmap.yaml");
    assert_eq!(cm.len(), 2);
    let json = cm[0]["data"]["snapshot-agent.json"]
        .as_str()
        .expect("config");
    let v: serde_json::Value = serde_json::from_str(json).expect("embedded config is JSON");
    assert!(v["snapshot_agent"]["snapshot"]["interval"].is_string());
    // Logs in with the pod's projected service-account token, which the pod mounts.
    assert_eq!(v["snapshot_agent"]["login"]["auth_method"], "kubernetes");
    let file = v["snapshot_agent"]["login"]["bearer_token_file"]
        .as_str()
        .expect("bearer_token_file");
    let mounts = format!("{:?}", pod["containers"][0]["volumeMounts"]);
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
    assert!(mounts.contains(dir), "{dir} mounted: {mounts}");
    let config = std::env::temp_dir().join(format!("k8s-{}.json", std::process::id()));
    std::fs::write(&config, json).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args(["agent", "--print-config", "--config-file"])
        .arg(&config)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hcl_files_parse() {
    let policy: hcl::Body = hcl::from_str(
        &std::fs::read_to_string(deploy("acl/consul-snapshot-agent.policy.hcl")).expect("read"),
    )
    .expect("policy parses");
    let text = format!("{policy:?}");
    for needle in ["acl", "key_prefix", "session_prefix", "service"] {
        assert!(text.contains(needle), "{needle}");
    }
    let job: hcl::Body = hcl::from_str(
        &std::fs::read_to_string(deploy("nomad/consul-snapshot-agent.nomad.hcl")).expect("read"),
    )
    .expect("job parses");
    let job = format!("{job:?}");
    assert!(job.contains("consul-snapshot-agent"));
    // Nomad restarts on /live only (check_restart), and reports /health.
    assert!(
        job.contains("/live") && job.contains("check_restart"),
        "{job}"
    );
}

/// `agent --print-config` of one example file, as JSON.
fn printed(file: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args(["agent", "--print-config", "--config-file"])
        .arg(deploy(file))
        .env_remove("CONSUL_HTTP_TOKEN")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn example_config_loads_with_the_agent_s_own_loader() {
    let v = printed("config/snapshot-agent.json");
    assert_eq!(v["snapshot_agent"]["snapshot"]["keep_daily"], 14);
    assert_eq!(
        v["snapshot_agent"]["aws_storage"]["s3_bucket"],
        "my-consul-backups"
    );
    // The Azure example (credentials from the environment: managed identity, SAS...).
    let v = printed("config/snapshot-agent-azure.json");
    let az = &v["snapshot_agent"]["azure_blob_storage"];
    assert_eq!(
        (az["container_name"].as_str(), az["key_prefix"].as_str()),
        (Some("consul-snapshots"), Some("dc1/"))
    );
    assert!(
        v["snapshot_agent"].get("local_storage").is_none(),
        "a container disables local storage: {v}"
    );
    // The GCS example (Application Default Credentials: workload identity, a key file...).
    let v = printed("config/snapshot-agent-gcs.json");
    let gcs = &v["snapshot_agent"]["google_storage"];
    assert_eq!(
        (gcs["bucket"].as_str(), gcs["key_prefix"].as_str()),
        (Some("my-consul-backups"), Some("dc1/"))
    );
    assert!(
        v["snapshot_agent"].get("local_storage").is_none(),
        "a bucket disables local storage: {v}"
    );
}

#[test]
fn container_and_unit_run_unprivileged() {
    let docker = std::fs::read_to_string(deploy("Dockerfile")).expect("read");
    assert!(
        docker.lines().filter(|l| l.starts_with("FROM ")).count() >= 2,
        "multi-stage"
    );
    let user = docker
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    // Completions and man pages are generated by the binary and installed.
    for generated in [
        "consul-snapshot-agent man --dir",
        "consul-snapshot-agent completions bash",
        "/usr/local/share/man/man1/",
        "/usr/share/bash-completion/completions/",
    ] {
        assert!(docker.contains(generated), "Dockerfile lacks {generated:?}");
    }
    let unit =
        std::fs::read_to_string(deploy("systemd/consul-snapshot-agent.service")).expect("read");
    let mut section = "";
    let mut keys = Vec::new();
    for line in unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.starts_with('[') {
            assert!(line.ends_with(']'), "{line}");
            section = line;
            continue;
        }
        let (k, _) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        keys.push((section, k.to_string()));
    }
    for k in [
        "DynamicUser",
        "NoNewPrivileges",
        "ProtectSystem",
        "CapabilityBoundingSet",
        "ExecStart",
    ] {
        assert!(
            keys.iter().any(|(s, key)| *s == "[Service]" && key == k),
            "{k}"
        );
    }
}
