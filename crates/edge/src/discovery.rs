//! Home Assistant MQTT discovery: one device with sensors for the windowed
//! score, the pair's alignment and novelty, the drift detector's statistic,
//! and a problem binary sensor for the drift alert, all marked unavailable when the status is `offline`.

use crate::messages::{Kind, Message, Topics};
use serde_json::json;

/// The retained discovery configs for a device under `topics`.
pub fn discovery_messages(topics: &Topics) -> Vec<Message> {
    let node = topics.prefix().replace('/', "_");
    let device = json!({
        "identifiers": [node],
        "name": topics.prefix(),
        "manufacturer": "spanwatch",
        "model": "spanwatch-edge",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let sensor = |key: &str, name: &str, template: &str| {
        let body = json!({
            "name": name,
            "unique_id": format!("{node}_{key}"),
            "state_topic": topics.metrics(),
            "value_template": template,
            "availability_topic": topics.status(),
            "state_class": "measurement",
            "device": device,
        });
        config(format!("homeassistant/sensor/{node}/{key}/config"), body)
    };
    let alert = json!({
        "name": "Synthetic data drift",
        "unique_id": format!("{node}_alert"),
        "state_topic": topics.alert(),
        "value_template": "{{ value_json.state }}",
        "payload_on": "raised",
        "payload_off": "clear",
        "device_class": "problem",
        "availability_topic": topics.status(),
        "device": device,
    });
    vec![
        sensor("ds", "Discriminative span", "{{ value_json.ds }}"),
        sensor("alignment", "Pair alignment", "{{ value_json.alignment }}"),
        sensor("novelty", "Pair novelty", "{{ value_json.novelty }}"),
        sensor("drift", "Drift level (CUSUM over its threshold, alert above 1)", "{{ value_json.drift.level }}"),
        config(format!("homeassistant/binary_sensor/{node}/alert/config"), alert),
    ]
}

fn config(topic: String, body: serde_json::Value) -> Message {
    Message { topic, payload: body.to_string(), retain: true, kind: Kind::Discovery }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_point_at_the_device_topics() {
        let messages = discovery_messages(&Topics::new("spanwatch/plant/cam1"));
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[0].topic, "homeassistant/sensor/spanwatch_plant_cam1/ds/config");
        let alert: serde_json::Value = serde_json::from_str(&messages[4].payload).unwrap();
        assert_eq!(alert["state_topic"], "spanwatch/plant/cam1/alert");
        assert_eq!(alert["availability_topic"], "spanwatch/plant/cam1/status");
        assert!(messages.iter().all(|m| m.retain && m.payload.len() < 1024));
    }

    /// Every sensor's template names a number in the documented metrics example.
    #[test]
    fn sensor_templates_name_fields_of_the_metrics_message() {
        let page = include_str!("../../../docs/mqtt.md");
        let start = page.find("\n## metrics\n").expect("a metrics section");
        let block = page[start..].split("```json\n").nth(1).and_then(|b| b.split("```").next()).expect("a metrics example");
        let example: serde_json::Value = serde_json::from_str(block).unwrap();
        for message in discovery_messages(&Topics::new("a/b/c")).iter().filter(|m| m.topic.starts_with("homeassistant/sensor/")) {
            let config: serde_json::Value = serde_json::from_str(&message.payload).unwrap();
            let template = config["value_template"].as_str().unwrap();
            let path = template.trim_start_matches("{{ value_json.").trim_end_matches(" }}");
            let value = path.split('.').fold(&example, |v, key| &v[key]);
            assert!(value.is_number(), "{template} names no number in the metrics example");
        }
    }
}
