//! Which text format a scrape gets. Prometheus itself asks for OpenMetrics
//! first; `promtool check metrics` (2.42, Debian's) and other older tools
//! parse only the classic text format (0.0.4), which a client gets when its
//! `Accept` header prefers `text/plain` to OpenMetrics.

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4 (`text/plain`).
    Classic,
}

/// Most media ranges of an `Accept` header looked at; the rest is ignored.
const MAX_RANGES: usize = 32;

impl Format {
    /// The format for a scraper's `Accept` header: the one with the higher
    /// quality, OpenMetrics when they tie, when the header is missing, or
    /// when it names neither (`*/*`, `application/json`).
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let (mut open, mut classic) = (None::<f32>, None::<f32>);
        for range in accept.split(',').take(MAX_RANGES) {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .map_or(1.0, |q| q.clamp(0.0, 1.0));
            let slot = match media.as_str() {
                "application/openmetrics-text" => &mut open,
                "text/plain" => &mut classic,
                _ => continue,
            };
            // The best quality named for a type counts.
            *slot = Some(slot.map_or(quality, |q| q.max(quality)));
        }
        match (open, classic) {
            (_, Some(c)) if c > 0.0 && c > open.unwrap_or(0.0) => Format::Classic,
            _ => Format::OpenMetrics,
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => prometheus_text::CONTENT_TYPE,
        }
    }

    /// Every metric of `registry` in this format.
    pub fn encode(self, registry: &Registry) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        match self {
            Format::OpenMetrics => text::encode(&mut out, registry)?,
            Format::Classic => prometheus_text::encode(&mut out, registry)?,
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_promtool_style_clients_get_classic() {
        // What Prometheus 2.42 sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("text/plain; version=0.0.4")),
            Format::Classic
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Classic
        );
    }

    #[test]
    fn anything_else_gets_openmetrics() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/json"),
            Some("text/plain;q=0"),
            Some("text/plain;q=0.5, application/openmetrics-text;q=0.5"),
            Some(";;;,,,=;q=;q=nan"),
            Some("text/plain;q=NaN, application/openmetrics-text"),
        ] {
            assert_eq!(
                Format::from_accept(accept),
                Format::OpenMetrics,
                "{accept:?}"
            );
        }
        // Odd but harmless: quality outside 0..1 is clamped.
        assert_eq!(
            Format::from_accept(Some("TEXT/PLAIN; Q=7")),
            Format::Classic
        );
    }
}
