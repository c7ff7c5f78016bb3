//! Crash safety under load, bounded: 30 rounds of `atoll serve` killed with SIGKILL at a random
//! moment while deploys (good and refused), rollbacks, function deletes, tenant deletes and
//! re-creations, and key-value increments run. After every restart each acknowledged change is
//! there, no refused change is, a change cut by the kill is there whole or not at all, and the
//! gateway starts. `ATOLL_CHAOS_ROUNDS` runs more rounds (`make bench` style soak).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use atoll_gateway::store::content_hash;
use rand::Rng as _;
use serde_json::Value;
use support::{Served, tenant_wasm, try_call};

/// Rounds run by default: enough to hit every phase of a change, bounded for CI.
const ROUNDS: usize = 30;
/// Versions kept per function, low so that deploys drop versions (and collect garbage).
const KEEP: usize = 3;
/// The longest a round runs its load before the kill.
const MAX_LOAD: Duration = Duration::from_millis(600);

/// A function as the admin API describes it: what must survive a crash exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    version: String,
    versions: Vec<String>,
    routes: Vec<String>,
}

impl View {
    fn from_json(json: &Value) -> View {
        let strings = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .unwrap_or_else(|| panic!("`{key}` in {json}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        View {
            version: json["version"].as_str().unwrap().to_owned(),
            versions: strings("versions"),
            routes: strings("routes"),
        }
    }
}

/// What one subject (a function, a tenant, a counter) is known to be: its state as of the last
/// acknowledged change, and, while a change is in flight, the state that change makes.
#[derive(Debug, Clone)]
struct Known<S> {
    acknowledged: S,
    in_flight: Option<S>,
}

impl<S: Clone + PartialEq + std::fmt::Debug> Known<S> {
    fn new(state: S) -> Known<S> {
        Known {
            acknowledged: state,
            in_flight: None,
        }
    }

    /// Whether `seen` is what a crash may leave: the acknowledged state, or the in-flight
    /// change applied whole.
    fn allows(&self, seen: &S) -> bool {
        *seen == self.acknowledged || self.in_flight.as_ref() == Some(seen)
    }

    /// After a restart: what was seen is the truth from now on.
    fn settle(&mut self, seen: S) {
        self.acknowledged = seen;
        self.in_flight = None;
    }
}

/// An answer, or the gateway is gone (killed mid-call).
type Answer = Result<(u16, Value), ()>;

fn call(method: &str, url: &str, token: &str, host: Option<&str>, body: Vec<u8>) -> Answer {
    let (status, bytes) = try_call(method, url, Some(token), host, body).map_err(|_| ())?;
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, json))
}

/// Where the gateway is, for the workers of one round.
#[derive(Clone)]
struct Target {
    admin: String,
    proxy: String,
    operator: String,
}

impl Target {
    fn of(served: &Served) -> Target {
        Target {
            admin: format!("http://{}", served.admin),
            proxy: format!("http://{}", served.proxy),
            operator: served.operator_token(),
        }
    }

    fn admin(&self, method: &str, path: &str, body: Vec<u8>) -> Answer {
        call(
            method,
            &format!("{}{path}", self.admin),
            &self.operator,
            None,
            body,
        )
    }
}

/// The components deploys choose from: three that serve and one the gateway refuses.
struct Components {
    good: Vec<(String, Vec<u8>)>,
    refused: Vec<u8>,
}

impl Components {
    fn load() -> Components {
        let good = ["hello", "echo", "json_api"]
            .iter()
            .map(|name| {
                let bytes = std::fs::read(tenant_wasm(name)).unwrap();
                (content_hash(&bytes), bytes)
            })
            .collect();
        Components {
            good,
            refused: std::fs::read(tenant_wasm("notproxy")).unwrap(),
        }
    }
}

/// The state of function `name` of tenant `tenant`, as the API has it now.
fn observe_function(target: &Target, tenant: &str, name: &str) -> Option<View> {
    let (status, json) = target
        .admin(
            "GET",
            &format!("/v1/tenants/{tenant}/functions/{name}"),
            vec![],
        )
        .expect("the restarted gateway answers");
    match status {
        200 => Some(View::from_json(&json)),
        404 => None,
        other => panic!("GET {tenant}/{name}: {other} {json}"),
    }
}

/// One worker's load on one function of tenant `chaos`: deploys, refused deploys, rollbacks
/// and deletes, one at a time, until the gateway is gone or `stop`.
fn function_worker(
    target: Target,
    name: String,
    known: &mut Known<Option<View>>,
    components: &Components,
    stop: &AtomicBool,
) {
    let mut rng = rand::rng();
    let route = format!("chaos.test/{name}");
    while !stop.load(Ordering::Relaxed) {
        let current = known.acknowledged.clone();
        let path = format!("/v1/tenants/chaos/functions/{name}");
        let choice = rng.random_range(0..10);
        let (method, url, body, next) = match choice {
            0..=4 => {
                let (sha, bytes) = &components.good[rng.random_range(0..components.good.len())];
                let mut versions = current.as_ref().map_or(vec![], |v| v.versions.clone());
                versions.retain(|v| v != sha);
                versions.push(sha.clone());
                let excess = versions.len().saturating_sub(KEEP);
                versions.drain(..excess);
                let next = Some(View {
                    version: sha.clone(),
                    versions,
                    routes: vec![route.clone()],
                });
                let url = format!("{path}?route={route}");
                ("PUT", url, bytes.clone(), next)
            }
            5 => (
                "PUT",
                format!("{path}?route={route}"),
                components.refused.clone(),
                current.clone(),
            ),
            6..=8 => {
                let next = current.as_ref().map(|v| {
                    let at = v.versions.iter().position(|x| *x == v.version).unwrap();
                    View {
                        version: v.versions[at.saturating_sub(1)].clone(),
                        ..v.clone()
                    }
                });
                ("POST", format!("{path}/rollback"), vec![], next)
            }
            _ => ("DELETE", path.clone(), vec![], None),
        };
        known.in_flight = Some(next.clone());
        let Ok((status, json)) = target.admin(method, &url, body) else {
            return; // Killed: the change may or may not have landed.
        };
        known.in_flight = None;
        match (choice, status) {
            (0..=4, 201) => assert_eq!(Some(View::from_json(&json)), next, "deploy answer"),
            (5, 400) => {}
            (6..=8, 200) => assert_eq!(Some(View::from_json(&json)), next, "rollback answer"),
            // Nothing to roll back to, or no such function: refused, nothing changed.
            (6..=8, 404 | 409) | (9, 404) => continue,
            (9, 204) => {}
            (_, 503) => continue, // Shedding under load: refused, nothing changed.
            other => panic!("{method} {url}: {other:?} {json}"),
        }
        if choice != 5 {
            known.acknowledged = next;
        }
    }
}

/// Load on tenant `ephemeral`: made (with one function), then deleted, again and again.
fn tenant_worker(target: Target, known: &mut Known<bool>, hello: &[u8], stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let exists = known.acknowledged;
        known.in_flight = Some(!exists);
        let answer = if exists {
            target.admin("DELETE", "/v1/tenants/ephemeral", vec![])
        } else {
            target.admin(
                "PUT",
                "/v1/tenants/ephemeral",
                br#"{"hosts": ["ephemeral.test"]}"#.to_vec(),
            )
        };
        let Ok((status, json)) = answer else { return };
        known.in_flight = None;
        match status {
            200 | 204 => known.acknowledged = !exists,
            503 => continue,
            other => panic!("tenant ephemeral: {other} {json}"),
        }
        if !exists {
            // A function in it, so that deleting it deletes files too. Not tracked: it goes with
            // the tenant.
            let url = "/v1/tenants/ephemeral/functions/f?route=ephemeral.test/";
            if target.admin("PUT", url, hello.to_vec()).is_err() {
                return;
            }
        }
    }
}

/// Load on tenant `counter`'s key-value counter: increments, one at a time.
fn counter_worker(target: Target, known: &mut Known<u64>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = known.acknowledged + 1;
        known.in_flight = Some(next);
        let url = format!("{}/count", target.proxy);
        let Ok((status, body)) = call("GET", &url, "", Some("counter.test"), vec![]) else {
            return;
        };
        known.in_flight = None;
        match status {
            200 => {
                let counted = as_count(&body);
                assert_eq!(counted, next, "increments are exact");
                known.acknowledged = next;
            }
            503 => continue,
            other => panic!("GET /count: {other} {body}"),
        }
    }
}

fn counter_value(target: &Target) -> u64 {
    let url = format!("{}/count?peek", target.proxy);
    let (status, body) = call("GET", &url, "", Some("counter.test"), vec![]).unwrap();
    assert_eq!(status, 200, "{body}");
    as_count(&body)
}

/// The counter's answer (`3\n`, which parses as the JSON number 3).
fn as_count(body: &Value) -> u64 {
    match body {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("a count, not {body}"))
}

fn tenant_exists(target: &Target, tenant: &str) -> bool {
    let (status, json) = target
        .admin("GET", &format!("/v1/tenants/{tenant}"), vec![])
        .unwrap();
    match status {
        200 => true,
        404 => false,
        other => panic!("GET tenant {tenant}: {other} {json}"),
    }
}

#[test]
fn thirty_sigkills_under_load_lose_no_acknowledged_change_and_keep_no_refused_one() {
    let rounds = std::env::var("ATOLL_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let components = Components::load();
    let extra = format!("keep_versions: {KEEP}\n");
    let mut data = tempfile::tempdir().unwrap();

    // Set-up, acknowledged before the first round.
    let served = Served::start_in(data, &extra);
    let target = Target::of(&served);
    for tenant in ["chaos", "counter"] {
        let spec = format!(r#"{{"hosts": ["{tenant}.test"]}}"#);
        let (status, _) = target
            .admin("PUT", &format!("/v1/tenants/{tenant}"), spec.into_bytes())
            .unwrap();
        assert_eq!(status, 200);
    }
    let counter = std::fs::read(tenant_wasm("kv_counter")).unwrap();
    let (status, json) = target
        .admin(
            "PUT",
            "/v1/tenants/counter/functions/c?route=counter.test/",
            counter,
        )
        .unwrap();
    assert_eq!(status, 201, "{json}");
    let names: Vec<String> = (0..3).map(|i| format!("f{i}")).collect();
    let mut functions: Vec<Known<Option<View>>> = names.iter().map(|_| Known::new(None)).collect();
    let mut ephemeral = Known::new(false);
    let mut count = Known::new(0u64);
    data = kill(served);

    let hello = &components.good[0].1;
    let started = Instant::now();
    let mut kills_mid_change = 0;
    for round in 0..rounds {
        let served = Served::start_in(data, &extra);
        let target = Target::of(&served);

        // Everything acknowledged is there; nothing refused is; a cut change is whole or absent.
        for (name, known) in names.iter().zip(&mut functions) {
            let seen = observe_function(&target, "chaos", name);
            assert!(
                known.allows(&seen),
                "round {round}: {name} is {seen:?}, expected {known:?}"
            );
            if seen.is_some() {
                let url = format!("{}/{name}", target.proxy);
                // The function answers (`json_api` itself says 404 to paths it has no resource
                // for); the gateway's own 404 would say `no_route`.
                let (status, body) = call("GET", &url, "", Some("chaos.test"), vec![]).unwrap();
                if status != 200 && body["error"]["code"] == "no_route" {
                    let quarantine = target.admin("GET", "/v1/quarantine", vec![]);
                    panic!("round {round}: {name} answers {status}; quarantine: {quarantine:?}");
                }
            }
            known.settle(seen);
        }
        let exists = tenant_exists(&target, "ephemeral");
        assert!(
            ephemeral.allows(&exists),
            "round {round}: ephemeral {exists}, {ephemeral:?}"
        );
        ephemeral.settle(exists);
        let value = counter_value(&target);
        assert!(
            count.allows(&value),
            "round {round}: counter {value}, {count:?}"
        );
        count.settle(value);

        // Load, then SIGKILL at a random moment.
        let stop = AtomicBool::new(false);
        let load_for = rand::rng().random_range(Duration::ZERO..MAX_LOAD);
        data =
            std::thread::scope(|scope| {
                let mut workers = Vec::new();
                for (name, known) in names.iter().zip(&mut functions) {
                    let (target, stop, components) = (target.clone(), &stop, &components);
                    workers.push(scope.spawn(move || {
                        function_worker(target, name.clone(), known, components, stop)
                    }));
                }
                let (t, stop_ref) = (target.clone(), &stop);
                let eph = &mut ephemeral;
                workers.push(scope.spawn(move || tenant_worker(t, eph, hello, stop_ref)));
                let (t, stop_ref) = (target.clone(), &stop);
                let counted = &mut count;
                workers.push(scope.spawn(move || counter_worker(t, counted, stop_ref)));
                std::thread::sleep(load_for);
                let data = kill(served);
                stop.store(true, Ordering::Relaxed);
                for worker in workers {
                    worker.join().expect("a worker's check failed");
                }
                data
            });
        let cut = functions.iter().filter(|k| k.in_flight.is_some()).count()
            + usize::from(ephemeral.in_flight.is_some())
            + usize::from(count.in_flight.is_some());
        kills_mid_change += usize::from(cut > 0);
    }
    // The last round's kill is checked too.
    let served = Served::start_in(data, &extra);
    let target = Target::of(&served);
    for (name, known) in names.iter().zip(&functions) {
        let seen = observe_function(&target, "chaos", name);
        assert!(
            known.allows(&seen),
            "after the last round: {name} {seen:?} {known:?}"
        );
    }
    assert!(ephemeral.allows(&tenant_exists(&target, "ephemeral")));
    assert!(count.allows(&counter_value(&target)));
    eprintln!(
        "{rounds} rounds in {:.1} s; {kills_mid_change} kills left a change unanswered; counter at {}",
        started.elapsed().as_secs_f64(),
        count.acknowledged
    );
    assert!(
        kills_mid_change > 0 || rounds < 10,
        "the kills landed while changes ran"
    );
}

/// SIGKILLs the gateway (no shutdown code runs) and hands back its data directory.
fn kill(mut served: Served) -> tempfile::TempDir {
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    std::mem::replace(&mut served.data, tempfile::tempdir().unwrap())
}
