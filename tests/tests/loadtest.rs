//! `atoll-loadtest`'s driver against the real gateway: closed and open loop, HTTP/1.1 and h2c,
//! every run inside its bounds and every answer timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atoll_loadtest::driver::{self, Load, Picker, Protocol, Target};
use atoll_loadtest::pacing::{Bounds, Pacing};
use atoll_loadtest::zipf::ZipfPicker;
use atoll_tests::{DEMO_TENANTS, TestGateway};

fn load(gateway: &TestGateway, protocol: Protocol, pacing: Pacing, bounds: Bounds) -> Load {
    Load {
        addr: gateway.handle().http_addr(),
        targets: Arc::new(vec![Target {
            host: "localhost".to_owned(),
            path: "/hello".to_owned(),
        }]),
        picker: Picker::First,
        protocol,
        connections: 4,
        pacing,
        bounds,
        answered: Default::default(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn closed_loop_sends_exactly_the_bounded_count_over_both_protocols() {
    let gateway = TestGateway::start(DEMO_TENANTS);
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let bounds = Bounds {
            duration: Duration::from_secs(60),
            max_requests: 300,
        };
        let outcome = runtime()
            .block_on(driver::run(load(
                &gateway,
                protocol,
                Pacing::Closed,
                bounds,
            )))
            .unwrap();
        assert_eq!(outcome.ok, 300, "{protocol:?}: {:?}", outcome.first_failure);
        assert_eq!(outcome.errors, 0, "{protocol:?}");
        assert_eq!(outcome.latencies.count(), 300, "{protocol:?}");
        assert!(outcome.latencies.summary().p50_us > 0);
    }
}

#[test]
fn open_loop_keeps_its_rate_and_its_time_bound() {
    let gateway = TestGateway::start(DEMO_TENANTS);
    let bounds = Bounds {
        duration: Duration::from_millis(800),
        max_requests: u64::MAX,
    };
    let started = Instant::now();
    let outcome = runtime()
        .block_on(driver::run(load(
            &gateway,
            Protocol::Http1,
            Pacing::Open { rate: 250.0 },
            bounds,
        )))
        .unwrap();
    // 0.8 s at 250 per second: exactly 200 due, all answered.
    assert_eq!(outcome.ok, 200, "{:?}", outcome.first_failure);
    assert_eq!(outcome.errors, 0);
    assert!(
        outcome.elapsed >= Duration::from_millis(790),
        "the last request was due at 796 ms: {:?}",
        outcome.elapsed
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn non_2xx_answers_count_as_errors_and_zipf_spreads_over_targets() {
    let gateway = TestGateway::start(DEMO_TENANTS);
    let mut spec = load(
        &gateway,
        Protocol::Http1,
        Pacing::Closed,
        Bounds {
            duration: Duration::from_secs(60),
            max_requests: 400,
        },
    );
    // Target 0 answers 200; target 1 matches no route (404).
    spec.targets = Arc::new(vec![
        Target {
            host: "localhost".to_owned(),
            path: "/hello".to_owned(),
        },
        Target {
            host: "localhost".to_owned(),
            path: "/nowhere".to_owned(),
        },
    ]);
    spec.picker = Picker::Zipf(ZipfPicker::new(2, 1.0));
    let outcome = runtime().block_on(driver::run(spec)).unwrap();
    assert_eq!(outcome.ok + outcome.errors, 400);
    // With s = 1 over two targets, two thirds go to the first.
    assert!(
        (220..320).contains(&outcome.ok),
        "{} ok, {} errors",
        outcome.ok,
        outcome.errors
    );
}

#[test]
fn density_deploys_n_tenants_and_spreads_traffic_over_them() {
    use atoll_loadtest::admin::Admin;
    use atoll_loadtest::density::{self, Components};

    const TENANTS: usize = 6;
    let gateway = TestGateway::start("");
    let admin = Admin::new(&gateway.admin_url(""), &gateway.operator_token());
    let wasm = bytes::Bytes::from(std::fs::read(atoll_tests::tenant_wasm("hello")).unwrap());
    let runtime = runtime();
    let run = runtime.block_on(async {
        density::deploy_tenants(&admin, TENANTS, &wasm, Components::Distinct)
            .await
            .unwrap();
        let bounds = Bounds {
            duration: Duration::from_secs(60),
            max_requests: 600,
        };
        let traffic = density::Traffic {
            proxy: gateway.handle().http_addr(),
            tenants: TENANTS,
            connections: 4,
            pacing: Pacing::Closed,
            bounds,
            answered: Default::default(),
        };
        density::drive(&admin, traffic).await.unwrap()
    });
    assert_eq!(run.outcome.ok, 600, "{:?}", run.outcome.first_failure);
    assert_eq!(run.outcome.errors, 0);
    let p99 = run.instantiation_p99.expect("instantiations were recorded");
    assert!(p99 > 0.0 && p99 < 1.0, "{p99}");

    // Every tenant got some traffic, the first the most. The gateway counts a request just
    // after its response goes out: wait for the last counts to land.
    let counts_now = || {
        let metrics = gateway.handle().metrics().render();
        (0..TENANTS)
            .map(|i| {
                atoll_tests::metric_value(
                    &metrics,
                    &format!(
                        r#"atoll_requests_total{{code="200",function="hello",tenant="d{i}"}}"#
                    ),
                )
                .unwrap_or(0.0)
            })
            .collect::<Vec<f64>>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut counts = counts_now();
    while counts.iter().sum::<f64>() < 600.0 && Instant::now() < deadline {
        std::thread::yield_now();
        counts = counts_now();
    }
    assert_eq!(counts.iter().sum::<f64>(), 600.0, "{counts:?}");
    assert!(counts.iter().all(|&c| c > 0.0), "{counts:?}");
    assert!(counts[0] > counts[TENANTS - 1], "{counts:?}");
}
