//! Every metric family the gateway exports, in one place, registered in a [`prometheus::Registry`]
//! of the server's own (so several gateways in one process, as in tests, never mix).
//!
//! Labels carry tenant and function names only: never paths, hosts or request ids.

use prometheus::{
    Counter, CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `result` labels of `atoll_deployments_total`.
pub const DEPLOY_RESULTS: [&str; 7] = [
    "ok",
    "invalid",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "error",
];

/// Request-duration buckets, 50 µs to 10 s: edge latencies.
const REQUEST_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Instantiation buckets, from 1 µs.
const INSTANTIATION_BUCKETS: &[f64] = &[
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
    0.0025, 0.01,
];

/// The gateway's metric families.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `atoll_requests_total{tenant, function, code}`.
    pub requests: IntCounterVec,
    /// `atoll_request_duration_seconds{tenant, function}`.
    pub request_duration: HistogramVec,
    /// `atoll_instantiation_duration_seconds{tenant}`.
    pub instantiation: HistogramVec,
    /// `atoll_wasm_traps_total{tenant, function, reason}`.
    pub traps: IntCounterVec,
    /// `atoll_limit_rejections_total{tenant, limit}`.
    pub limit_rejections: IntCounterVec,
    /// `atoll_instances_active{tenant}`.
    pub instances_active: IntGaugeVec,
    /// `atoll_wasm_memory_peak_bytes{tenant}`.
    pub memory_peak: HistogramVec,
    /// `atoll_execution_seconds_total{tenant, function}`.
    pub execution: CounterVec,
    /// `atoll_outbound_requests_total{tenant, result}`.
    pub outbound: IntCounterVec,
    /// `atoll_deployments_total{tenant, result}`.
    pub deployments: IntCounterVec,
    /// `atoll_functions_loaded`.
    pub functions_loaded: IntGauge,
    /// `atoll_quarantined_functions`: stored functions start-up could not serve.
    pub quarantined_functions: IntGauge,
    /// `atoll_artifacts_total{source}`: functions loaded from the precompiled-artifact cache
    /// (`cached`) or compiled (`compiled`, `recompiled`).
    pub artifacts: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("atoll_requests_total", "Requests served, by status code"),
            &["tenant", "function", "code"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "atoll_request_duration_seconds",
                "Time from routing to the response head",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["tenant", "function"],
        )
        .expect("valid metric");
        let instantiation = HistogramVec::new(
            HistogramOpts::new(
                "atoll_instantiation_duration_seconds",
                "Time to create a fresh instance for a request",
            )
            .buckets(INSTANTIATION_BUCKETS.to_vec()),
            &["tenant"],
        )
        .expect("valid metric");
        let traps = IntCounterVec::new(
            Opts::new("atoll_wasm_traps_total", "Guest traps, by reason"),
            &["tenant", "function", "reason"],
        )
        .expect("valid metric");
        let limit_rejections = IntCounterVec::new(
            Opts::new(
                "atoll_limit_rejections_total",
                "Requests refused or stopped by a tenant limit, by limit",
            ),
            &["tenant", "limit"],
        )
        .expect("valid metric");
        let instances_active = IntGaugeVec::new(
            Opts::new("atoll_instances_active", "Instances running now"),
            &["tenant"],
        )
        .expect("valid metric");
        let memory_peak = HistogramVec::new(
            HistogramOpts::new(
                "atoll_wasm_memory_peak_bytes",
                "The largest linear memory each request's instance reached",
            )
            .buckets(prometheus::exponential_buckets(64.0 * 1024.0, 2.0, 14).expect("valid")),
            &["tenant"],
        )
        .expect("valid metric");
        let execution = CounterVec::new(
            Opts::new(
                "atoll_execution_seconds_total",
                "Time spent inside guests, from instantiation to the end of handle",
            ),
            &["tenant", "function"],
        )
        .expect("valid metric");
        let outbound = IntCounterVec::new(
            Opts::new(
                "atoll_outbound_requests_total",
                "Guests' outbound HTTP requests, by result",
            ),
            &["tenant", "result"],
        )
        .expect("valid metric");
        let deployments = IntCounterVec::new(
            Opts::new(
                "atoll_deployments_total",
                "Deploys through the admin API, by result",
            ),
            &["tenant", "result"],
        )
        .expect("valid metric");
        let functions_loaded =
            IntGauge::new("atoll_functions_loaded", "Functions ready to serve").expect("valid");
        let quarantined_functions = IntGauge::new(
            "atoll_quarantined_functions",
            "Stored functions start-up could not load, waiting to be fixed or deleted",
        )
        .expect("valid");
        let artifacts = IntCounterVec::new(
            Opts::new(
                "atoll_artifacts_total",
                "Functions loaded, by where their compiled code came from",
            ),
            &["source"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(instantiation.clone()),
            Box::new(traps.clone()),
            Box::new(limit_rejections.clone()),
            Box::new(instances_active.clone()),
            Box::new(memory_peak.clone()),
            Box::new(execution.clone()),
            Box::new(outbound.clone()),
            Box::new(deployments.clone()),
            Box::new(functions_loaded.clone()),
            Box::new(quarantined_functions.clone()),
            Box::new(artifacts.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            request_duration,
            instantiation,
            traps,
            limit_rejections,
            instances_active,
            memory_peak,
            execution,
            outbound,
            deployments,
            functions_loaded,
            quarantined_functions,
            artifacts,
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// One function's series, resolved once at load so the hot path skips the label lookups.
#[derive(Debug, Clone)]
pub struct FunctionMetrics {
    /// `atoll_requests_total{tenant, function, code="200"}`.
    pub ok: IntCounter,
    /// `atoll_request_duration_seconds{tenant, function}`.
    pub duration: Histogram,
    /// `atoll_instantiation_duration_seconds{tenant}`.
    pub instantiation: Histogram,
    /// `atoll_instances_active{tenant}`.
    pub active: IntGauge,
    /// `atoll_wasm_memory_peak_bytes{tenant}`.
    pub memory_peak: Histogram,
    /// `atoll_execution_seconds_total{tenant, function}`.
    pub execution: Counter,
}

impl Metrics {
    /// The pre-resolved series of `function` in `tenant`.
    pub fn for_function(&self, tenant: &str, function: &str) -> FunctionMetrics {
        FunctionMetrics {
            ok: self.requests.with_label_values(&[tenant, function, "200"]),
            duration: self.request_duration.with_label_values(&[tenant, function]),
            instantiation: self.instantiation.with_label_values(&[tenant]),
            active: self.instances_active.with_label_values(&[tenant]),
            memory_peak: self.memory_peak.with_label_values(&[tenant]),
            execution: self.execution.with_label_values(&[tenant, function]),
        }
    }

    /// The outbound counters of `tenant`; a series appears with the tenant's first call.
    pub fn outbound_for(&self, tenant: &str) -> crate::outbound::OutboundCounters {
        crate::outbound::OutboundCounters::new(self.outbound.clone(), tenant)
    }

    /// Removes every series of `function` in `tenant` (it was deleted).
    pub fn forget_function(&self, tenant: &str, function: &str) {
        for code in 100..=599u16 {
            if let Ok(code) = http::StatusCode::from_u16(code) {
                let _ = self
                    .requests
                    .remove_label_values(&[tenant, function, code.as_str()]);
            }
        }
        let _ = self
            .request_duration
            .remove_label_values(&[tenant, function]);
        let _ = self.execution.remove_label_values(&[tenant, function]);
        for reason in ["trap", "cpu", "memory", "timeout"] {
            let _ = self.traps.remove_label_values(&[tenant, function, reason]);
        }
    }

    /// Removes every series of `tenant` and of its `functions` (it was deleted).
    pub fn forget_tenant<'a>(&self, tenant: &str, functions: impl IntoIterator<Item = &'a str>) {
        for function in functions {
            self.forget_function(tenant, function);
        }
        let _ = self.instantiation.remove_label_values(&[tenant]);
        let _ = self.instances_active.remove_label_values(&[tenant]);
        let _ = self.memory_peak.remove_label_values(&[tenant]);
        for limit in [
            "rate",
            "concurrency",
            "request_body",
            "cpu",
            "memory",
            "timeout",
        ] {
            let _ = self.limit_rejections.remove_label_values(&[tenant, limit]);
        }
        for result in crate::outbound::OutboundResult::ALL {
            let result = result.as_str();
            let _ = self.outbound.remove_label_values(&[tenant, result]);
        }
        for result in DEPLOY_RESULTS {
            let _ = self.deployments.remove_label_values(&[tenant, result]);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family with one sample, so that each shows in the exposition.
    fn every_family() -> Metrics {
        let metrics = Metrics::new();
        let function = metrics.for_function("t", "f");
        function.ok.inc();
        function.duration.observe(0.001);
        function.instantiation.observe(0.00001);
        function.memory_peak.observe(65536.0);
        function.execution.inc_by(0.001);
        function.active.inc();
        metrics.traps.with_label_values(&["t", "f", "trap"]).inc();
        metrics
            .limit_rejections
            .with_label_values(&["t", "rate"])
            .inc();
        metrics.outbound.with_label_values(&["t", "ok"]).inc();
        metrics.deployments.with_label_values(&["t", "ok"]).inc();
        metrics.artifacts.with_label_values(&["compiled"]).inc();
        metrics.functions_loaded.set(1);
        metrics
    }

    /// The metric names in a PromQL expression: `atoll_` words, without histogram suffixes.
    fn metric_names(expr: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("atoll_") {
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + word.len()..];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| word.strip_suffix(suffix))
                .unwrap_or(&word);
            names.push(family.to_owned());
        }
        names
    }

    #[test]
    fn the_grafana_dashboard_charts_only_exported_families() {
        let exposition = every_family().render();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana/atoll-dashboard.json"
        );
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut charted = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for name in metric_names(expr) {
                    assert!(
                        exposition.contains(&format!("# TYPE {name} ")),
                        "panel {:?} charts {name}, which the gateway does not export",
                        panel["title"]
                    );
                    charted.insert(name);
                }
            }
        }
        for needed in [
            "atoll_requests_total",
            "atoll_request_duration_seconds",
            "atoll_instantiation_duration_seconds",
            "atoll_wasm_traps_total",
            "atoll_limit_rejections_total",
        ] {
            assert!(charted.contains(needed), "the dashboard charts {needed}");
        }
    }

    #[test]
    fn metric_names_strip_histogram_suffixes() {
        assert_eq!(
            metric_names("rate(atoll_a_bucket[5m]) / atoll_b_total"),
            ["atoll_a", "atoll_b_total"]
        );
    }
}
