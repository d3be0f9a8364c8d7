//! Writing metric families at scrape time, from values a program keeps in
//! its own atomics and tables. The programs count with plain atomic adds
//! on their hot paths (no lock, no lookup by label); a scrape reads them
//! and writes them here, through prometheus-client's encoders, so both
//! text formats come out right (`_total` on counters, units in names).
//!
//! Names are given without `_total` and without the unit: a counter
//! `p2p_relay_relayed` with unit bytes is written `p2p_relay_relayed_bytes_total`.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The label pairs of one series.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// A counter without labels.
pub fn counter(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: u64,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    let encoder = out.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
    metric.encode(encoder)
}

/// A counter of a quantity that is not whole (seconds).
pub fn counter_f64(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: f64,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    let encoder = out.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
    metric.encode(encoder)
}

/// A gauge without labels.
pub fn gauge(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    value: i64,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    let encoder = out.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
    metric.encode(encoder)
}

/// A counter with one series per label set.
pub fn counters<'a>(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    series: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> fmt::Result {
    let mut encoder = out.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge with one series per label set.
pub fn gauges<'a>(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    series: impl IntoIterator<Item = (Labels<'a>, i64)>,
) -> fmt::Result {
    let mut encoder = out.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A count as a gauge value, saturating (a count never nears i64::MAX).
pub fn level(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    #[derive(Debug)]
    struct Sample;

    impl Collector for Sample {
        fn encode(&self, mut out: DescriptorEncoder) -> fmt::Result {
            counter(
                &mut out,
                "p2p_x_relayed",
                "Bytes relayed.",
                Some(Unit::Bytes),
                7,
            )?;
            gauge(&mut out, "p2p_x_nodes", "Nodes listed.", None, 3)?;
            counters(
                &mut out,
                "p2p_x_requests",
                "Requests answered.",
                None,
                [(&[("kind", "who_has"), ("outcome", "ok")][..], 5)],
            )
        }
    }

    #[test]
    fn both_formats_name_counters_with_total_and_units() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Sample));
        let open = Format::OpenMetrics.encode(&registry).unwrap();
        assert!(
            open.contains("# TYPE p2p_x_relayed_bytes counter\n"),
            "{open}"
        );
        assert!(open.contains("p2p_x_relayed_bytes_total 7\n"), "{open}");
        assert!(
            open.contains("p2p_x_requests_total{kind=\"who_has\",outcome=\"ok\"} 5\n"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");
        let classic = Format::Classic.encode(&registry).unwrap();
        assert!(
            classic.contains("# TYPE p2p_x_relayed_bytes_total counter\n"),
            "{classic}"
        );
        assert!(classic.contains("p2p_x_nodes 3\n"), "{classic}");
        assert!(
            !classic.contains("# EOF") && !classic.contains("# UNIT"),
            "{classic}"
        );
    }
}
