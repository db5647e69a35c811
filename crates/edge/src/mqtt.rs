//! Delivery to the broker with rumqttc's AsyncClient.
//!
//! The outbox, not rumqttc, is the record of what is still to be sent: with
//! a clean session rumqttc drops its in-flight requests on reconnect, so the
//! publisher hands one message at a time to the client (QoS 1) and removes
//! it only on the broker's PUBACK. After a disconnect the same message goes
//! again, so delivery is at least once and in order; alerts carry a
//! sequence number for subscribers to drop a repeat. Every pair's messages
//! are in the on-disk store before they reach the publisher, which forgets
//! them there once acknowledged, so a killed daemon sends them after its
//! restart. While the broker is away the outbox holds up to its capacity,
//! dropping the oldest metrics first (from the store too) and never an
//! alert. The connection runs in its own task, which backs off between
//! reconnects (0.5 s doubling to 30 s, back to 0.5 s only once a connection
//! has lasted 10 s, so a broker that closes every connection right after
//! accepting it is not hammered); every ConnAck re-subscribes and
//! re-announces `online`, the health and Home Assistant discovery (one copy
//! of each discovery message waits, however often it is asked for). A link
//! that dies within 10 s of its ConnAck is logged with what usually causes
//! it: another client with the same client id, or an incoming message over
//! the packet limit; if the latter is a retained message on Home Assistant's
//! status topic, that topic is not subscribed again.

use crate::config::BrokerSettings;
use crate::messages::{Kind, Message, Topics};
use crate::store::Store;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Home Assistant's birth topic: discovery is re-sent when it says `online`.
pub const HA_STATUS_TOPIC: &str = "homeassistant/status";
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a connection must last before the backoff starts again at
/// [`FIRST_BACKOFF`], and before its loss is no longer "right after accepting".
const STABLE: Duration = Duration::from_secs(10);

/// What the publisher did, for the shutdown log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Metrics and verdicts dropped because the outbox was full.
    pub dropped: u64,
    /// Messages still unsent at shutdown (kept in the store for the next run).
    pub unsent: u64,
}

/// Settings of the publisher beyond the broker's.
pub struct PublisherSettings {
    /// Topics of this device.
    pub topics: Topics,
    /// Outbox capacity in messages.
    pub capacity: usize,
    /// Discovery messages to (re)publish on connect, if discovery is on.
    pub discovery: Vec<Message>,
    /// How long shutdown waits to deliver what is left.
    pub flush_timeout: Duration,
}

/// The client's options: id, keep-alive, last will `offline`, packet size, TLS, credentials.
pub fn mqtt_options(broker: &BrokerSettings, topics: &Topics) -> MqttOptions {
    let mut options = MqttOptions::new(&broker.client_id, &broker.host, broker.port);
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true)
        .set_max_packet_size(broker.max_packet, broker.max_packet)
        .set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    if let Some(tls) = &broker.tls {
        options.set_transport(Transport::Tls(TlsConfiguration::Simple { ca: tls.ca.clone(), alpn: None, client_auth: tls.client.clone() }));
    }
    options
}

/// What the connection task reports.
#[derive(Debug)]
enum Link {
    Connected,
    PubAck,
    HomeAssistantOnline,
    /// The connection failed or was lost; the next attempt is after `retry_in`.
    Down {
        reason: String,
        retry_in: Duration,
        /// It was lost within [`STABLE`] of the broker accepting it.
        short_lived: bool,
    },
    Closed,
}

/// Runs the connection: forwards what matters and backs off after errors.
async fn drive(mut eventloop: EventLoop, links: mpsc::UnboundedSender<Link>) {
    let mut backoff = FIRST_BACKOFF;
    let mut accepted: Option<Instant> = None;
    loop {
        let link = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                accepted = Some(Instant::now());
                Link::Connected
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => Link::PubAck,
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == HA_STATUS_TOPIC && &p.payload[..] == b"online" => {
                Link::HomeAssistantOnline
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = links.send(Link::Closed);
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                let lasted = accepted.take().map(|at| at.elapsed());
                if lasted.is_some_and(|lasted| lasted >= STABLE) {
                    backoff = FIRST_BACKOFF;
                }
                let short_lived = lasted.is_some_and(|lasted| lasted < STABLE);
                if links.send(Link::Down { reason: e.to_string(), retry_in: backoff, short_lived }).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if links.send(link).is_err() {
            return;
        }
    }
}

/// A message for the publisher, with its key in the store if it is kept there.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    /// The store's key (None: status, health and discovery, made anew on every run).
    pub key: Option<u64>,
    /// The message.
    pub message: Message,
}

/// The outbox: FIFO, bounded, alerts never dropped.
struct Outbox {
    queue: VecDeque<Queued>,
    capacity: usize,
    dropped: u64,
}

impl Outbox {
    /// Appends; returns the store key of a message dropped to make room.
    fn push(&mut self, item: Queued, in_flight: bool) -> Option<u64> {
        let mut dropped_key = None;
        let first_droppable = usize::from(in_flight);
        if item.message.kind == Kind::Discovery {
            // One copy of each discovery message waits (the one in flight stays).
            let mut i = 0;
            self.queue.retain(|q| {
                i += 1;
                i <= first_droppable || q.message.kind != Kind::Discovery || q.message.topic != item.message.topic
            });
        }
        if item.message.kind == Kind::Health {
            // Only the latest health matters (the one in flight stays).
            let mut i = 0;
            self.queue.retain(|q| {
                i += 1;
                i <= first_droppable || q.message.kind != Kind::Health
            });
        }
        if self.queue.len() >= self.capacity {
            if let Some(i) = (first_droppable..self.queue.len()).find(|&i| self.queue[i].message.kind == Kind::Data) {
                dropped_key = self.queue.remove(i).and_then(|q| q.key);
                self.dropped += 1;
                if self.dropped == 1 || self.dropped.is_power_of_two() {
                    tracing::warn!(dropped = self.dropped, "outbox full while the broker is away: dropping the oldest metrics");
                }
            }
        }
        self.queue.push_back(item);
        dropped_key
    }

    /// Puts `online` first (replacing an older status not yet sent).
    fn announce(&mut self, status: Message) {
        self.queue.retain(|q| q.message.kind != Kind::Status);
        self.queue.push_front(Queued { key: None, message: status });
    }
}

/// After how many links lost with the same message in flight it is dropped as unsendable.
const UNSENDABLE_AFTER: u32 = 3;

/// How many links in a row were lost while one message was in flight. The
/// `online` announced first on each connection is acknowledged in between,
/// so the count is kept per message, not reset by any acknowledgement.
#[derive(Default)]
struct Strikes {
    message: Option<Message>,
    count: u32,
}

impl Strikes {
    /// Counts a link lost with `message` in flight.
    fn lost_with(&mut self, message: &Message) {
        if self.message.as_ref() == Some(message) {
            self.count += 1;
        } else {
            *self = Strikes { message: Some(message.clone()), count: 1 };
        }
    }

    /// Links lost in a row with `message` in flight.
    fn against(&self, message: &Message) -> u32 {
        if self.message.as_ref() == Some(message) {
            self.count
        } else {
            0
        }
    }
}

/// The size of a QoS 1 PUBLISH of `message`: fixed header (at most 5
/// bytes), topic (2 + its length), packet id (2) and payload.
fn publish_size(message: &Message) -> usize {
    5 + 2 + message.topic.len() + 2 + message.payload.len()
}

/// Whether rumqttc lost the link over a packet larger than the limit.
fn is_oversize(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("payload size") || reason.contains("packet size") || reason.contains("size limit")
}

/// Forgets `keys` in the store; a failure only means a repeat after a restart.
fn forget(store: &Store, keys: &[u64]) {
    if let Err(e) = store.forget(keys) {
        tracing::error!("{e:#}; these messages may be sent again after a restart");
    }
}

/// Publishes everything `messages` carries until it closes, then flushes
/// (up to the flush timeout), publishes `offline` and disconnects.
pub async fn publish(
    broker: BrokerSettings,
    settings: PublisherSettings,
    store: Arc<Store>,
    restored: Vec<(u64, Message)>,
    mut messages: mpsc::UnboundedReceiver<Queued>,
) -> Delivery {
    let topics = settings.topics.clone();
    let (client_id, broker_max_packet) = (broker.client_id.clone(), broker.max_packet);
    let (client, eventloop) = AsyncClient::new(mqtt_options(&broker, &topics), 64);
    let (link_tx, mut links) = mpsc::unbounded_channel();
    let connection = tokio::spawn(drive(eventloop, link_tx));
    let online = Message { topic: topics.status(), payload: "online".into(), retain: true, kind: Kind::Status };
    let mut outbox = Outbox { queue: VecDeque::new(), capacity: settings.capacity, dropped: 0 };
    // What a previous run could not deliver goes first.
    for (key, message) in restored {
        if let Some(dropped) = outbox.push(Queued { key: Some(key), message }, false) {
            forget(&store, &[dropped]);
        }
    }
    let (mut connected, mut in_flight, mut delivered) = (false, false, 0u64);
    // Cleared when a retained message on Home Assistant's status topic is
    // over the packet limit: receiving it would drop every connection.
    let mut subscribe_ha_status = true;
    let mut closing: Option<Instant> = None;
    // Links lost while the same message was in flight: a broker whose
    // max_packet_size is below it drops every connection it is sent on.
    let mut strikes = Strikes::default();
    loop {
        if connected && !in_flight {
            let too_large = outbox.queue.front().is_some_and(|q| publish_size(&q.message) > broker_max_packet);
            if too_large || outbox.queue.front().is_some_and(|q| strikes.against(&q.message) >= UNSENDABLE_AFTER) {
                if let Some(Queued { key, message }) = outbox.queue.pop_front() {
                    let why = if too_large {
                        "is larger than max_packet"
                    } else {
                        "lost the link every time it was sent (over the broker's max_packet_size?)"
                    };
                    tracing::error!(topic = %message.topic, bytes = publish_size(&message), max_packet = broker_max_packet, "a message {why}: dropped");
                    if let Some(key) = key {
                        forget(&store, &[key]);
                    }
                    outbox.dropped += 1;
                }
                strikes = Strikes::default();
                continue;
            }
            if let Some(Queued { message: m, .. }) = outbox.queue.front() {
                in_flight = client.try_publish(&m.topic, QoS::AtLeastOnce, m.retain, m.payload.clone()).is_ok();
            }
        }
        if closing.is_some() && outbox.queue.is_empty() {
            break;
        }
        let deadline = closing.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = messages.recv(), if closing.is_none() => match message {
                Some(item) => if let Some(dropped) = outbox.push(item, in_flight) {
                    forget(&store, &[dropped]);
                },
                None => closing = Some(Instant::now() + settings.flush_timeout),
            },
            link = links.recv() => match link {
                Some(Link::Connected) => {
                    tracing::info!(broker = %format!("{}:{}", broker.host, broker.port), "connected to the broker");
                    connected = true;
                    in_flight = false;
                    if !settings.discovery.is_empty() {
                        if subscribe_ha_status {
                            let _ = client.try_subscribe(HA_STATUS_TOPIC, QoS::AtLeastOnce);
                        }
                        outbox.queue.retain(|q| q.message.kind != Kind::Discovery);
                        settings.discovery.iter().rev().for_each(|m| outbox.queue.push_front(Queued { key: None, message: m.clone() }));
                    }
                    outbox.announce(online.clone());
                }
                Some(Link::PubAck) if in_flight => {
                    in_flight = false;
                    delivered += 1;
                    if let Some(Queued { key: Some(key), .. }) = outbox.queue.pop_front() {
                        forget(&store, &[key]);
                    }
                }
                Some(Link::PubAck) | Some(Link::Closed) => {}
                Some(Link::HomeAssistantOnline) => settings.discovery.iter().for_each(|m| {
                    let _ = outbox.push(Queued { key: None, message: m.clone() }, in_flight);
                }),
                Some(Link::Down { reason, retry_in, short_lived }) => {
                    // Every failed attempt is logged: the backoff (0.5 s doubling
                    // to 30 s) bounds the rate, and a broker that never answers,
                    // or a TLS setup that cannot work, is never silent.
                    let broker = format!("{}:{}", broker.host, broker.port);
                    let oversize = is_oversize(&reason);
                    if oversize && subscribe_ha_status && !settings.discovery.is_empty() {
                        subscribe_ha_status = false;
                        tracing::error!(
                            %broker, %reason, max_packet = broker_max_packet,
                            "a message larger than max_packet arrived, most likely retained on {HA_STATUS_TOPIC}; \
                             no longer subscribing to it (discovery is still sent on every connection)"
                        );
                    } else if let Some(front) = outbox.queue.front().filter(|_| short_lived && !oversize && in_flight) {
                        tracing::warn!(
                            %broker, %reason, topic = %front.message.topic, bytes = publish_size(&front.message), client_id = %client_id, ?retry_in,
                            "the broker closed the connection while a message was in flight: is it over the broker's \
                             max_packet_size, or is another client connected with this client id?"
                        );
                    } else if short_lived && !oversize {
                        tracing::warn!(
                            %broker, %reason, client_id = %client_id, ?retry_in,
                            "the broker closed the connection right after accepting it: is another client connected with \
                             this client id? each daemon needs its own --device or --client-id"
                        );
                    } else if connected {
                        tracing::warn!(%broker, %reason, buffered = outbox.queue.len(), ?retry_in, "lost the broker; buffering and reconnecting");
                    } else {
                        tracing::warn!(%broker, %reason, buffered = outbox.queue.len(), ?retry_in, "cannot connect to the broker; retrying");
                    }
                    if let (true, Some(front)) = (in_flight, outbox.queue.front()) {
                        strikes.lost_with(&front.message);
                    }
                    connected = false;
                    in_flight = false;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if closing.is_some() => break,
        }
    }
    let unsent = outbox.queue.len() as u64;
    if connected {
        say_offline(&client, &topics, &mut links).await;
    }
    connection.abort();
    if let Err(e) = store.sync() {
        tracing::error!("{e:#}; acknowledged messages may be sent again after a restart");
    }
    Delivery { delivered, dropped: outbox.dropped, unsent }
}

/// Publishes the retained `offline` status, waits briefly for its PUBACK, and disconnects.
async fn say_offline(client: &AsyncClient, topics: &Topics, links: &mut mpsc::UnboundedReceiver<Link>) {
    if client.try_publish(topics.status(), QoS::AtLeastOnce, true, "offline").is_ok() {
        wait_for(links, |l| matches!(l, Link::PubAck)).await;
    }
    if client.try_disconnect().is_ok() {
        wait_for(links, |l| matches!(l, Link::Closed)).await;
    }
}

/// Waits up to two seconds for a link event that `want` accepts.
async fn wait_for(links: &mut mpsc::UnboundedReceiver<Link>, want: fn(&Link) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(link)) = tokio::time::timeout_at(deadline, links.recv()).await {
        if want(&link) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u64) -> Queued {
        Queued { key: Some(n), message: Message { topic: "m".into(), payload: n.to_string(), retain: false, kind: Kind::Data } }
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_data_never_an_alert_nor_the_message_in_flight() {
        let mut outbox = Outbox { queue: VecDeque::new(), capacity: 3, dropped: 0 };
        let alert = Queued {
            key: Some(9),
            message: Message { topic: "a".into(), payload: "x".into(), retain: true, kind: Kind::Alert { seq: 1 } },
        };
        let health =
            |p: &str| Queued { key: None, message: Message { topic: "h".into(), payload: p.into(), retain: true, kind: Kind::Health } };
        let payloads = |o: &Outbox| o.queue.iter().map(|q| q.message.payload.clone()).collect::<Vec<_>>();
        assert_eq!(outbox.push(data(0), false), None);
        assert_eq!(outbox.push(alert.clone(), false), None);
        assert_eq!(outbox.push(data(1), false), None);
        assert_eq!(outbox.push(data(2), true), Some(1), "the dropped message's key, to forget in the store");
        assert_eq!(payloads(&outbox), ["0", "x", "2"], "0 is in flight, so 1 goes");
        assert_eq!(outbox.push(data(3), false), Some(0));
        assert_eq!(payloads(&outbox), ["x", "2", "3"]);
        assert_eq!(outbox.dropped, 2);
        outbox.announce(Message { topic: "s".into(), payload: "online".into(), retain: true, kind: Kind::Status });
        assert_eq!(outbox.queue.front().unwrap().message.payload, "online");
        outbox.capacity = 10;
        outbox.push(health("paused"), false);
        outbox.push(health("ok"), false);
        assert_eq!(payloads(&outbox), ["online", "x", "2", "3", "ok"], "only the latest health waits");
    }

    /// A flood of Home Assistant `online` births queued 4 discovery messages
    /// each, never dropped, until metrics were evicted (8 of 20 lost with
    /// the broker up): one copy of each discovery message waits.
    #[test]
    fn repeated_discovery_keeps_one_copy_of_each_and_evicts_nothing() {
        let mut outbox = Outbox { queue: VecDeque::new(), capacity: 8, dropped: 0 };
        let discovery = |topic: &str| Queued {
            key: None,
            message: Message { topic: topic.into(), payload: "{}".into(), retain: true, kind: Kind::Discovery },
        };
        for n in 0..4 {
            outbox.push(data(n), false);
        }
        for _ in 0..1000 {
            for topic in ["ha/a", "ha/b", "ha/c", "ha/d"] {
                assert_eq!(outbox.push(discovery(topic), false), None);
            }
        }
        assert_eq!(outbox.queue.len(), 8, "4 metrics and one copy of each of the 4 discovery messages");
        assert_eq!(outbox.dropped, 0, "no metrics evicted");
        // The copy in flight stays; a newer one waits behind it.
        let mut outbox = Outbox { queue: VecDeque::from([discovery("ha/a")]), capacity: 8, dropped: 0 };
        outbox.push(discovery("ha/a"), true);
        assert_eq!(outbox.queue.len(), 2);
    }

    #[test]
    fn rumqttcs_packet_limit_error_is_recognised() {
        assert!(is_oversize(&rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(102_400).to_string()));
        assert!(!is_oversize("connection closed by peer"));
    }
}
