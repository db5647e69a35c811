//! An MQTT broker in this process (rumqttd) on a free loopback port, for the
//! zero-setup demo and for tests on machines without mosquitto.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A running in-process broker. It lives until the process ends (rumqttd has
/// no shutdown call).
pub struct LocalBroker {
    /// Its loopback port.
    pub port: u16,
}

/// A loopback port free right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts rumqttd on 127.0.0.1 and waits until it accepts connections.
pub fn start_local_broker() -> Result<LocalBroker> {
    let port = free_port()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 5000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings { name: "v4-loopback".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let router = rumqttd::RouterConfig {
        max_connections: 64,
        max_outgoing_packet_count: 200,
        max_segment_size: 16 * 1024 * 1024,
        max_segment_count: 10,
        ..Default::default()
    };
    let config = rumqttd::Config { router, v4: Some(HashMap::from([("1".to_string(), server)])), ..Default::default() };
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = rumqttd::Broker::new(config).start() {
                tracing::error!("the in-process MQTT broker stopped: {e}");
            }
        })
        .context("cannot start the in-process MQTT broker")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(listen).is_err() {
        if Instant::now() > deadline {
            bail!("the in-process MQTT broker did not start listening on {listen} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(LocalBroker { port })
}
