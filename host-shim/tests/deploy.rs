//! `deploy/coordinator.yaml`, as `accord generate --coordinator` writes
//! it, parsed as Kubernetes objects: do the pieces fit together, and with
//! the shim's and the protocol's constants? (That the file is exactly the
//! command's output is `cli/tests/generate_coordinator.rs`'s check.)

use std::collections::BTreeMap;

use accord_core::protocol::{MESH_API_PORT, USER_API_PORT};
use accord_shim::PROBE_PORT;
use accord_shim::http::{LIVENESS, READINESS, STARTUP};
use accord_shim::labels::{
    NAME_LABEL, NAME_VALUE, POD_ROLE_ANNOTATION, POD_ROLE_VALUE, READY_SERVICE_NAME,
    STATEFULSET_NAME,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, Probe, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

const COORDINATOR_YAML: &str = include_str!("../deploy/coordinator.yaml");
const IMAGES_JSON: &str = include_str!("../deploy/images.json");

/// Every document of the rendered file, by kind.
#[derive(Default)]
struct Objects {
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    stateful_sets: Vec<StatefulSet>,
    services: Vec<Service>,
    network_policies: Vec<NetworkPolicy>,
}

/// The file, checked to be rendered (`accord generate` wrote it).
fn render() -> String {
    assert!(
        !COORDINATOR_YAML.contains("${"),
        "unrendered parameter left"
    );
    assert!(
        !COORDINATOR_YAML.contains("accord-cc"),
        "the marker runtime class is left: not generated"
    );
    COORDINATOR_YAML.to_owned()
}

/// The pinned reference of image `name` in `deploy/images.json`.
fn image(name: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(IMAGES_JSON).unwrap();
    let found = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("images.json lists no {name}"));
    let reference = found["reference"].as_str().unwrap();
    let digest = found["digest"].as_str().unwrap();
    assert!(
        reference.ends_with(&format!("@{digest}")) && digest.len() == "sha256:".len() + 64,
        "{reference} is not pinned by {digest}"
    );
    reference.to_owned()
}

/// Every document of `yaml`; panics on a document that is not valid.
fn parse(yaml: &str) -> Objects {
    try_parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// Every document of `yaml`, or why a document's kind is not one the file
/// may hold.
fn try_parse(yaml: &str) -> Result<Objects, String> {
    let mut objects = Objects::default();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_yaml_ng::Value::deserialize(document).expect("valid YAML");
        if value.is_null() {
            continue;
        }
        let api_version = value["apiVersion"].as_str().expect("apiVersion").to_owned();
        let kind = value["kind"].as_str().expect("kind").to_owned();
        macro_rules! typed {
            ($ty:ty, $api:literal, $field:ident) => {{
                assert_eq!(api_version, $api, "{kind}");
                objects
                    .$field
                    .push(serde_yaml_ng::from_value::<$ty>(value).unwrap_or_else(|e| {
                        panic!("{kind} does not parse: {e}");
                    }));
            }};
        }
        match kind.as_str() {
            "ServiceAccount" => typed!(ServiceAccount, "v1", service_accounts),
            "Role" => typed!(Role, "rbac.authorization.k8s.io/v1", roles),
            "RoleBinding" => typed!(RoleBinding, "rbac.authorization.k8s.io/v1", role_bindings),
            "StatefulSet" => typed!(StatefulSet, "apps/v1", stateful_sets),
            "Service" => typed!(Service, "v1", services),
            "NetworkPolicy" => typed!(NetworkPolicy, "networking.k8s.io/v1", network_policies),
            other => return Err(format!("unexpected kind {other}")),
        }
    }
    Ok(objects)
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().expect("a name")
}

fn pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_string(), NAME_VALUE.to_string())])
}

/// Whether `selector` (equality only) selects pods labelled `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn the_stateful_set(objects: &Objects) -> &StatefulSet {
    assert_eq!(objects.stateful_sets.len(), 1);
    let sts = &objects.stateful_sets[0];
    assert_eq!(name_of(&sts.metadata), STATEFULSET_NAME);
    sts
}

fn containers(sts: &StatefulSet) -> BTreeMap<&str, &Container> {
    let spec = sts.spec.template.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect()
}

#[test]
fn every_document_parses_as_its_kind() {
    let objects = parse(&render());
    assert_eq!(objects.service_accounts.len(), 1);
    assert_eq!(objects.roles.len(), 1);
    assert_eq!(objects.role_bindings.len(), 1);
    assert_eq!(objects.stateful_sets.len(), 1);
    assert_eq!(objects.services.len(), 2);
    assert_eq!(objects.network_policies.len(), 1);
}

#[test]
fn unknown_kinds_fail() {
    let refused = try_parse("apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n");
    assert_eq!(refused.err().as_deref(), Some("unexpected kind Secret"));
}

#[test]
fn the_pods_run_under_kata_with_their_generated_policy() {
    let objects = parse(&render());
    let template = &the_stateful_set(&objects).spec.template;
    let spec = template.spec.as_ref().unwrap();
    assert_eq!(spec.runtime_class_name.as_deref(), Some("kata-qemu-snp"));
    let annotations = template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert!(
        annotations.contains_key("io.katacontainers.config.hypervisor.cc_init_data"),
        "no init-data: the pods' HOST_DATA / MRCONFIGID would pin nothing"
    );
}

#[test]
fn the_stateful_set_selects_its_pods() {
    let objects = parse(&render());
    let sts = the_stateful_set(&objects);
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some(STATEFULSET_NAME));
    let template_meta = spec.template.metadata.as_ref().unwrap();
    let labels = template_meta.labels.clone().unwrap();
    assert_eq!(labels, pod_labels());
    let selector = spec.selector.match_labels.clone().unwrap();
    assert!(spec.selector.match_expressions.is_none());
    assert!(selects(&selector, &labels));

    // What the Kubernetes discovery looks for.
    let annotations = template_meta.annotations.clone().unwrap();
    assert_eq!(
        annotations.get(POD_ROLE_ANNOTATION).map(String::as_str),
        Some(POD_ROLE_VALUE)
    );
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/port").map(String::as_str),
        Some(PROBE_PORT.to_string().as_str())
    );
    assert_eq!(
        annotations.get("prometheus.io/path").map(String::as_str),
        Some(accord_shim::http::METRICS)
    );

    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(STATEFULSET_NAME));
    // Soft anti-affinity against the other replicas.
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    assert!(
        anti.required_during_scheduling_ignored_during_execution
            .is_none()
    );
    let preferred = anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(preferred.len(), 1);
    let term = &preferred[0].pod_affinity_term;
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    let anti_selector = term
        .label_selector
        .as_ref()
        .unwrap()
        .match_labels
        .clone()
        .unwrap();
    assert!(selects(&anti_selector, &labels));
}

#[test]
fn both_services_select_the_pods() {
    let objects = parse(&render());
    let labels = pod_labels();
    let mut seen = BTreeMap::new();
    for service in &objects.services {
        let name = name_of(&service.metadata);
        let spec = service.spec.as_ref().unwrap();
        assert!(
            selects(spec.selector.as_ref().unwrap(), &labels),
            "{name} does not select the coordinator pods"
        );
        let publish = spec.publish_not_ready_addresses.unwrap_or(false);
        let mut ports: Vec<(i32, IntOrString)> = spec
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.port, p.target_port.clone().unwrap()))
            .collect();
        ports.sort_by_key(|p| p.0);
        assert_eq!(
            ports,
            [
                (
                    i32::from(USER_API_PORT),
                    IntOrString::Int(i32::from(USER_API_PORT))
                ),
                (
                    i32::from(MESH_API_PORT),
                    IntOrString::Int(i32::from(MESH_API_PORT))
                ),
            ],
            "{name}"
        );
        seen.insert(name.to_owned(), publish);
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            (STATEFULSET_NAME.to_owned(), true),
            (READY_SERVICE_NAME.to_owned(), false),
        ])
    );
}

fn http_probe(probe: Option<&Probe>) -> (&str, &IntOrString, &Probe) {
    let probe = probe.expect("probe present");
    let get = probe.http_get.as_ref().expect("an HTTP probe");
    (get.path.as_deref().unwrap(), &get.port, probe)
}

#[test]
fn probes_hit_the_shim() {
    let objects = parse(&render());
    let sts = the_stateful_set(&objects);
    let containers = containers(sts);
    assert_eq!(
        containers.keys().copied().collect::<Vec<_>>(),
        ["agent", "shim"]
    );
    let probe_port = IntOrString::Int(i32::from(PROBE_PORT));
    let mut probed = 0;
    for (name, container) in &containers {
        for (kind, probe, path) in [
            ("startup", container.startup_probe.as_ref(), STARTUP),
            ("liveness", container.liveness_probe.as_ref(), LIVENESS),
            ("readiness", container.readiness_probe.as_ref(), READINESS),
        ] {
            if probe.is_none() {
                continue;
            }
            probed += 1;
            let (got_path, port, _) = http_probe(probe);
            assert_eq!(got_path, path, "{name} {kind}");
            assert_eq!(port, &probe_port, "{name} {kind}");
        }
    }
    assert_eq!(probed, 3, "exactly the three probes");

    // On the agent (a silent agent is what gets restarted), with the
    // periods and thresholds Contrast uses for its coordinator.
    let agent = containers["agent"];
    let (_, _, startup) = http_probe(agent.startup_probe.as_ref());
    assert_eq!(
        (startup.period_seconds, startup.failure_threshold),
        (Some(1), Some(60))
    );
    let (_, _, liveness) = http_probe(agent.liveness_probe.as_ref());
    assert_eq!(
        (liveness.period_seconds, liveness.failure_threshold),
        (Some(10), Some(3))
    );
    // A busy shim is not a dead agent: more than the kubelet's default 1 s.
    assert_eq!(liveness.timeout_seconds, Some(5));
    let (_, _, readiness) = http_probe(agent.readiness_probe.as_ref());
    assert_eq!(readiness.period_seconds, Some(5));

    // The shim serves them (and the metrics).
    let shim = containers["shim"];

    let shim_ports: Vec<i32> = shim
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(shim_ports, [i32::from(PROBE_PORT)]);
}

/// What the containers may do in the confidential VM: the agent attests
/// as root (configfs-tsm is root's) without any capability, device, host
/// path or privilege; the shim is not root and has no capability either
/// (README.md, "Evidence in a Kata pod").
#[test]
fn the_agent_attests_as_root_with_nothing_more() {
    let objects = parse(&render());
    let sts = the_stateful_set(&objects);
    let containers = containers(sts);
    for (name, uid) in [("agent", 0), ("shim", 65532)] {
        let c = containers[name];
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_user, Some(uid), "{name}");
        assert_eq!(sc.run_as_group, Some(uid), "{name}");
        assert_ne!(sc.privileged, Some(true), "{name}");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(
            caps.drop.as_deref(),
            Some(&["ALL".to_owned()][..]),
            "{name}"
        );
        assert!(caps.add.as_ref().is_none_or(Vec::is_empty), "{name}");
        assert!(
            c.volume_devices.as_ref().is_none_or(Vec::is_empty),
            "{name}"
        );
    }
    let agent = containers["agent"];
    assert!(agent.volume_mounts.as_ref().is_none_or(Vec::is_empty));
    let spec = sts.spec.template.spec.as_ref().unwrap();
    for v in spec.volumes.iter().flatten() {
        assert!(v.host_path.is_none(), "volume {} is a host path", v.name);
    }
}

#[test]
fn containers_and_ports() {
    let objects = parse(&render());
    let sts = the_stateful_set(&objects);
    let containers = containers(sts);
    let agent = containers["agent"];
    assert_eq!(agent.image, Some(image("accord-agent")));
    let args = agent.args.clone().unwrap();
    assert_eq!(args[0], "coordinator");
    let shim_flag = args.iter().position(|a| a == "--shim").unwrap();
    assert_eq!(
        args[shim_flag + 1],
        format!("127.0.0.1:{}", accord_core::protocol::SHIM_PORT)
    );
    let ports: BTreeMap<String, i32> = agent
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([
            ("meshapi".to_owned(), i32::from(MESH_API_PORT)),
            ("userapi".to_owned(), i32::from(USER_API_PORT)),
        ])
    );

    let shim = containers["shim"];
    assert_eq!(shim.image, Some(image("accord-shim")));
    let args = shim.args.clone().unwrap();
    let flag = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .map(|i| args[i + 1].as_str())
    };
    assert_eq!(flag("--backend"), Some("kube"));
    assert_eq!(flag("--discovery"), Some("kube"));
    // The pod's name and namespace come from the environment (the
    // shim's --pod-name and --namespace read POD_NAME and POD_NAMESPACE).
    assert_eq!(flag("--pod-name"), None);
    assert_eq!(flag("--namespace"), None);
    assert_eq!(flag("--kds-url"), Some(accord_collateral::DEFAULT_KDS_URL));
    assert_eq!(flag("--pcs-url"), Some(accord_collateral::DEFAULT_PCS_URL));
    let cache = flag("--collateral-cache").unwrap();
    let mounted = shim
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == cache);
    assert!(mounted, "the collateral cache {cache} is a volume");
    let env: BTreeMap<&str, &str> = shim
        .env
        .iter()
        .flatten()
        .map(|e| {
            let field = e.value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
            (e.name.as_str(), field.field_path.as_str())
        })
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ])
    );

    // Memory request = limit on every container (a Kata VM is sized by it).
    for (name, container) in &containers {
        let resources = container.resources.as_ref().unwrap();
        let request = &resources.requests.as_ref().unwrap()["memory"];
        let limit = &resources.limits.as_ref().unwrap()["memory"];
        assert_eq!(request, limit, "{name}");
    }
}

#[test]
fn the_role_grants_exactly_what_the_shim_uses() {
    let objects = parse(&render());
    let role = &objects.roles[0];
    assert_eq!(name_of(&role.metadata), STATEFULSET_NAME);
    let mut grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        assert_eq!(rule.api_groups.as_deref(), Some(&[String::new()][..]));
        assert!(rule.resource_names.is_none());
        for resource in rule.resources.iter().flatten() {
            let verbs = grants.entry(resource.clone()).or_default();
            verbs.extend(rule.verbs.iter().cloned());
            verbs.sort();
        }
    }
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        grants,
        BTreeMap::from([
            (
                "configmaps".to_owned(),
                owned(&["create", "get", "list", "update", "watch"])
            ),
            ("pods".to_owned(), owned(&["list", "watch"])),
        ])
    );

    let binding = &objects.role_bindings[0];
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.name, STATEFULSET_NAME);
    let subjects = binding.subjects.as_ref().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, STATEFULSET_NAME);
    assert_eq!(
        name_of(&objects.service_accounts[0].metadata),
        STATEFULSET_NAME
    );
}

#[test]
fn the_readme_shows_how_to_delete_the_history() {
    use accord_shim::kube_store::MANAGED_BY_LABEL;
    let readme = include_str!("../deploy/README.md");
    let command = format!(
        "kubectl -n NAMESPACE delete configmap -l {}={}",
        MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1
    );
    assert!(readme.contains(&command), "README.md lacks {command}");
    assert!(readme.contains("destroys the deployment's history"));
    // Nothing in the deployment owns the history.
    assert!(!COORDINATOR_YAML.contains("ownerReferences"));
}

#[test]
fn the_readme_shows_how_to_generate_and_apply() {
    let readme = include_str!("../deploy/README.md");
    assert!(
        readme.contains("accord generate --coordinator")
            && readme.contains("kubectl apply -f host-shim/deploy/coordinator.yaml")
    );
}

/// The Prometheus pods allowed to scrape 9102, as `deploy/README.md`
/// documents them: (namespace labels, pod labels).
const PROMETHEUS_NAMESPACE: (&str, &str) = ("kubernetes.io/metadata.name", "monitoring");
const PROMETHEUS_POD: (&str, &str) = ("app.kubernetes.io/name", "prometheus");

#[test]
fn the_network_policy_opens_each_port_to_its_clients() {
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;

    let objects = parse(&render());
    let sts = the_stateful_set(&objects);
    let policy = &objects.network_policies[0];
    assert_eq!(name_of(&policy.metadata), STATEFULSET_NAME);
    let spec = policy.spec.as_ref().unwrap();

    // It applies to the coordinator pods, selected as the StatefulSet
    // selects them.
    let selector = spec.pod_selector.as_ref().unwrap();
    assert!(selector.match_expressions.is_none());
    let selector = selector.match_labels.clone().unwrap();
    assert!(selects(&selector, &pod_labels()));
    assert_eq!(Some(selector), sts.spec.selector.match_labels);
    // Ingress only: the agent dials peers, the shim the API server.
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned()][..])
    );
    assert!(spec.egress.is_none());

    // port → who may connect (None: anyone).
    let mut allowed: BTreeMap<i32, Vec<Option<Vec<NetworkPolicyPeer>>>> = BTreeMap::new();
    for rule in spec.ingress.iter().flatten() {
        let ports = rule.ports.as_ref().expect("every rule names its ports");
        assert!(!ports.is_empty(), "a rule without ports opens every port");
        for port in ports {
            assert_eq!(port.protocol.as_deref(), Some("TCP"));
            assert!(port.end_port.is_none());
            let Some(IntOrString::Int(number)) = port.port else {
                panic!("ports are numbers: {port:?}");
            };
            allowed.entry(number).or_default().push(rule.from.clone());
        }
    }

    // Exactly the ports the containers declare; the agent's channel to
    // its shim (loopback) is not among them.
    let declared: Vec<i32> = containers(sts)
        .values()
        .flat_map(|c| c.ports.iter().flatten().map(|p| p.container_port))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(allowed.keys().copied().collect::<Vec<_>>(), declared);
    assert_eq!(
        declared,
        [
            i32::from(USER_API_PORT),
            i32::from(MESH_API_PORT),
            i32::from(PROBE_PORT)
        ]
    );
    assert!(!allowed.contains_key(&i32::from(accord_core::protocol::SHIM_PORT)));

    // The user and mesh APIs are open to every client.
    for port in [USER_API_PORT, MESH_API_PORT] {
        assert_eq!(allowed[&i32::from(port)], [None], "port {port}");
    }

    // The probes and metrics only to Prometheus: both selectors set (an
    // empty one would select everything), no address ranges.
    let probe_rules = &allowed[&i32::from(PROBE_PORT)];
    assert_eq!(probe_rules.len(), 1);
    let peers = probe_rules[0].as_ref().expect("9102 is not open to all");
    assert_eq!(peers.len(), 1);
    let peer = &peers[0];
    assert!(peer.ip_block.is_none());
    let labels = |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        let s = s.as_ref().expect("selector present");
        assert!(s.match_expressions.is_none());
        s.match_labels.clone().unwrap_or_default()
    };
    let own = |(k, v): (&str, &str)| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    assert_eq!(labels(&peer.namespace_selector), own(PROMETHEUS_NAMESPACE));
    assert_eq!(labels(&peer.pod_selector), own(PROMETHEUS_POD));
    // Not the coordinator pods themselves.
    assert!(!selects(&labels(&peer.pod_selector), &pod_labels()));
}

#[test]
fn the_readme_documents_the_network_policy() {
    let readme = include_str!("../deploy/README.md");
    for needle in [
        format!("`{}: {}`", PROMETHEUS_NAMESPACE.0, PROMETHEUS_NAMESPACE.1),
        format!("`{}: {}`", PROMETHEUS_POD.0, PROMETHEUS_POD.1),
        "kubelet's probes come from the node".to_owned(),
    ] {
        assert!(readme.contains(&needle), "README.md does not say {needle}");
    }
}
