//! The edge monitor's settings: a TOML file, every key of which a flag of
//! the same name (with dashes) overrides, resolved into [`Settings`].

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options from the command line or the TOML file (same names, `_` for `-`).
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Calibration bundle written by `spanwatch calibrate`.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Embedding model (bundled name or manifest path); default: the bundle's model.
    #[arg(long)]
    pub model: Option<String>,
    /// Spool directory where `<id>.source.png` and `<id>.synthetic.png` arrive.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Broker URL: mqtt://host:port or mqtts://host:port.
    #[arg(long)]
    pub broker: Option<String>,
    /// MQTT client id (default: spanwatch-<site>-<device>).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Site name, the second level of every topic.
    #[arg(long)]
    pub site: Option<String>,
    /// Device name, the third level of every topic.
    #[arg(long)]
    pub device: Option<String>,
    /// Broker user name.
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the broker password (kept off the command line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) for mqtts://.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Alarm output as CHIP:LINE, e.g. /dev/gpiochip0:17; without it the alarm is logged.
    #[arg(long)]
    pub alarm_gpio: Option<String>,
    /// Publish Home Assistant MQTT discovery configs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub ha_discovery: Option<bool>,
    /// Where undelivered alerts and the alert state persist (default: <input>/.spanwatch).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Messages buffered while the broker is away (oldest metrics dropped first; alerts never).
    #[arg(long)]
    pub buffer: Option<usize>,
    /// Largest MQTT packet in bytes, in and out.
    #[arg(long)]
    pub max_packet: Option<usize>,
    /// Milliseconds a pair's files must stay unchanged before it is read.
    #[arg(long)]
    pub settle_ms: Option<u64>,
    /// Seconds after which a file without its partner is moved to failed/.
    #[arg(long)]
    pub orphan_after_s: Option<u64>,
}

impl Options {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Options> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
    }

    /// These options, with `fallback`'s where these have none.
    pub fn or(self, fallback: Options) -> Options {
        Options {
            bundle: self.bundle.or(fallback.bundle),
            model: self.model.or(fallback.model),
            input: self.input.or(fallback.input),
            broker: self.broker.or(fallback.broker),
            client_id: self.client_id.or(fallback.client_id),
            site: self.site.or(fallback.site),
            device: self.device.or(fallback.device),
            username: self.username.or(fallback.username),
            password_file: self.password_file.or(fallback.password_file),
            tls_ca: self.tls_ca.or(fallback.tls_ca),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            alarm_gpio: self.alarm_gpio.or(fallback.alarm_gpio),
            ha_discovery: self.ha_discovery.or(fallback.ha_discovery),
            state_dir: self.state_dir.or(fallback.state_dir),
            buffer: self.buffer.or(fallback.buffer),
            max_packet: self.max_packet.or(fallback.max_packet),
            settle_ms: self.settle_ms.or(fallback.settle_ms),
            orphan_after_s: self.orphan_after_s.or(fallback.orphan_after_s),
        }
    }
}

/// Where the broker is and how to reach it.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// MQTT client id.
    pub client_id: String,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// TLS: CA, and client certificate and key for mutual TLS.
    pub tls: Option<TlsFiles>,
    /// Largest packet in bytes.
    pub max_packet: usize,
}

/// PEM contents for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate(s).
    pub ca: Vec<u8>,
    /// Client certificate and key.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// A GPIO line: character device and line offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpioLine {
    /// e.g. /dev/gpiochip0.
    pub chip: PathBuf,
    /// Line offset on the chip.
    pub line: u32,
}

/// Everything the monitor needs, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Calibration bundle.
    pub bundle: PathBuf,
    /// Model name or manifest path (None: the bundle's).
    pub model: Option<String>,
    /// Spool directory.
    pub input: PathBuf,
    /// Broker connection.
    pub broker: BrokerSettings,
    /// Topic prefix spanwatch/<site>/<device>.
    pub topic_prefix: String,
    /// Alarm output, or None to log the alarm.
    pub alarm_gpio: Option<GpioLine>,
    /// Publish Home Assistant discovery.
    pub ha_discovery: bool,
    /// Persistent state folder.
    pub state_dir: PathBuf,
    /// Outbox capacity in messages.
    pub buffer: usize,
    /// How long a pair's files must be unchanged.
    pub settle: Duration,
    /// When a partnerless file is given up on.
    pub orphan_after: Duration,
}

/// Default outbox capacity: about a day of pairs at one every ten seconds.
pub const DEFAULT_BUFFER: usize = 20_000;
/// Default max packet size: far above any message spanwatch sends (discovery configs are the largest, under 1 KiB).
pub const DEFAULT_MAX_PACKET: usize = 64 * 1024;

/// Largest TLS or password file read, in bytes: a certificate chain is a
/// few KB; a config naming a device or a huge file must not hang or fill memory.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// Reads a small file (`what` names it in errors), refusing one over [`MAX_SMALL_FILE`].
fn read_small(path: &Path, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SMALL_FILE + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_SMALL_FILE {
        bail!("the {what} {} is larger than {} KiB; it cannot be one", path.display(), MAX_SMALL_FILE >> 10);
    }
    Ok(bytes)
}

/// Warns when a secret's file can be read by group or others.
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.mode() & 0o044 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{:o}", meta.mode() & 0o777),
                "the password file can be read by other users; chmod 600 it"
            );
        }
    }
}

/// Longest settle time accepted, in milliseconds: a pair's files are
/// complete well within a minute, and a stop never waits longer than this.
pub const MAX_SETTLE_MS: u64 = 60_000;

impl Settings {
    /// Resolves and checks the options.
    pub fn resolve(options: Options) -> Result<Settings> {
        let bundle = options.bundle.context("no calibration bundle: give --bundle or `bundle` in the config file")?;
        let input = options.input.context("no spool directory: give --input or `input` in the config file")?;
        let site = topic_level("site", options.site.unwrap_or_else(|| "site".into()))?;
        let device = topic_level("device", options.device.unwrap_or_else(|| "edge".into()))?;
        let (tls_wanted, host, port) = parse_broker(options.broker.as_deref().unwrap_or("mqtt://127.0.0.1:1883"))?;
        let tls = match (tls_wanted, &options.tls_ca) {
            (false, None) if options.tls_cert.is_none() => None,
            (false, _) => bail!("TLS files are given but the broker URL is mqtt://; use mqtts://"),
            (true, None) => bail!("mqtts:// needs --tls-ca (the CA certificate that signed the broker's)"),
            (true, Some(ca)) => {
                let read = |p: &Path| read_small(p, "TLS file");
                let client = match (&options.tls_cert, &options.tls_key) {
                    (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                    (None, None) => None,
                    _ => bail!("mutual TLS needs both --tls-cert and --tls-key"),
                };
                Some(TlsFiles { ca: read(ca)?, client })
            }
        };
        let credentials = match (options.username, options.password_file) {
            (Some(user), Some(file)) => {
                warn_if_others_can_read(&file);
                let password = read_small(&file, "password file")?;
                let password = String::from_utf8(password).with_context(|| format!("the password file {} is not UTF-8", file.display()))?;
                Some((user, password.trim_end_matches(['\n', '\r']).to_string()))
            }
            (Some(user), None) => Some((user, String::new())),
            (None, Some(_)) => bail!("--password-file needs --username"),
            (None, None) => None,
        };
        let client_id = options.client_id.unwrap_or_else(|| format!("spanwatch-{site}-{device}"));
        let max_packet = options.max_packet.unwrap_or(DEFAULT_MAX_PACKET);
        if max_packet < 1024 {
            bail!("--max-packet {max_packet} is too small for spanwatch's messages (at least 1024)");
        }
        let alarm_gpio = options.alarm_gpio.as_deref().map(parse_gpio).transpose()?;
        let settle_ms = options.settle_ms.unwrap_or(300);
        if settle_ms > MAX_SETTLE_MS {
            bail!("settle_ms {settle_ms} is longer than the {MAX_SETTLE_MS} ms allowed (a pair's files settle within a minute)");
        }
        Ok(Settings {
            state_dir: options.state_dir.unwrap_or_else(|| input.join(".spanwatch")),
            bundle,
            model: options.model,
            input,
            broker: BrokerSettings { host, port, client_id, credentials, tls, max_packet },
            topic_prefix: format!("spanwatch/{site}/{device}"),
            alarm_gpio,
            ha_discovery: options.ha_discovery.unwrap_or(false),
            buffer: options.buffer.unwrap_or(DEFAULT_BUFFER).max(16),
            settle: Duration::from_millis(settle_ms),
            orphan_after: Duration::from_secs(options.orphan_after_s.unwrap_or(600)),
        })
    }
}

/// `mqtt://host:port` or `mqtts://host:port` (port defaults 1883 / 8883).
/// A URL with user info (`user:password@host`) is refused without repeating
/// it: the password goes in `password_file`, never in a URL that is logged.
fn parse_broker(url: &str) -> Result<(bool, String, u16)> {
    if url.contains('@') {
        bail!(
            "the broker URL holds user info (user:password@host), which spanwatch does not take: it would be shown in logs; \
             give the user name as --username (`username`) and the password in --password-file (`password_file`)"
        );
    }
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else {
        bail!("broker URL {url:?} must start with mqtt:// or mqtts://");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().with_context(|| format!("broker URL {url:?}: port {port:?} is not a number"))?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        bail!("broker URL {url:?} has no host");
    }
    Ok((tls, host.to_string(), port))
}

/// `CHIP:LINE`, e.g. `/dev/gpiochip0:17` or `gpiochip0:17`.
fn parse_gpio(text: &str) -> Result<GpioLine> {
    let (chip, line) = text.rsplit_once(':').with_context(|| format!("--alarm-gpio {text:?} is not CHIP:LINE"))?;
    let line = line.parse().with_context(|| format!("--alarm-gpio {text:?}: line {line:?} is not a number"))?;
    let chip = if chip.starts_with('/') { PathBuf::from(chip) } else { Path::new("/dev").join(chip) };
    Ok(GpioLine { chip, line })
}

/// A site or device name usable as one topic level.
fn topic_level(what: &str, name: String) -> Result<String> {
    if name.is_empty() || name.contains(['/', '+', '#', '\0']) {
        bail!("{what} name {name:?} cannot be an MQTT topic level (no '/', '+', '#', empty)");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: Options =
            toml::from_str("bundle = 'a.bundle'\ninput = 'spool'\nsite = 'plant'\nbroker = 'mqtt://broker.local'\nbuffer = 99").unwrap();
        let flags = Options { site: Some("line4".into()), ..Options::default() };
        let settings = Settings::resolve(flags.or(file)).unwrap();
        assert_eq!(settings.topic_prefix, "spanwatch/line4/edge");
        assert_eq!((settings.broker.host.as_str(), settings.broker.port), ("broker.local", 1883));
        assert_eq!(settings.buffer, 99);
        assert_eq!(settings.state_dir, PathBuf::from("spool/.spanwatch"));
        assert_eq!(settings.broker.client_id, "spanwatch-line4-edge");
    }

    #[test]
    fn bad_options_are_named() {
        assert!(toml::from_str::<Options>("bundel = 'x'").is_err(), "unknown keys are refused");
        let base = || Options { bundle: Some("b".into()), input: Some("i".into()), ..Options::default() };
        let error = |o: Options| Settings::resolve(o).unwrap_err().to_string();
        assert!(error(Options { broker: Some("tcp://x".into()), ..base() }).contains("mqtt://"));
        assert!(error(Options { broker: Some("mqtts://x".into()), ..base() }).contains("--tls-ca"));
        assert!(error(Options { site: Some("a/b".into()), ..base() }).contains("topic level"));
        assert!(error(Options { alarm_gpio: Some("chip".into()), ..base() }).contains("CHIP:LINE"));
        assert!(error(Options { input: None, ..base() }).contains("spool directory"));
        assert_eq!(parse_gpio("gpiochip1:4").unwrap(), GpioLine { chip: "/dev/gpiochip1".into(), line: 4 });
        assert_eq!(parse_broker("mqtts://h").unwrap(), (true, "h".into(), 8883));
        // User info in the URL: refused, and the secret is not repeated.
        for url in ["mqtt://u:s3cret@host", "mqtts://u:s3cret@host:8883", "mqtt://s3cret@host"] {
            let error = format!("{:#}", parse_broker(url).unwrap_err());
            assert!(error.contains("--password-file") && !error.contains("s3cret"), "{error}");
        }
        assert!(error(Options { settle_ms: Some(MAX_SETTLE_MS + 1), ..base() }).contains("settle_ms"));
        // A device or a huge file named as a TLS or password file: refused, not read forever.
        let zero = Some(PathBuf::from("/dev/zero"));
        let tls = Options { broker: Some("mqtts://h".into()), tls_ca: zero.clone(), ..base() };
        assert!(error(tls).contains("larger than 1024 KiB"));
        assert!(error(Options { username: Some("u".into()), password_file: zero, ..base() }).contains("password file /dev/zero is larger"));
    }

    // The property of the fuzz target fuzz/fuzz_targets/config_parse.rs:
    // any text is a config or an error, never a panic.
    proptest::proptest! {
        #[test]
        fn any_config_text_resolves_or_is_refused(
            lines in proptest::collection::vec(
                "(bundle|input|broker|site|device|alarm_gpio|buffer|max_packet|settle_ms|orphan_after_s|tls_ca|username|model|x) = ('[^'\\n]{0,20}'|-?[0-9]{1,20}|true|\\[\\]|\\{)",
                0..8,
            ),
            noise in "\\PC{0,12}",
        ) {
            let text = lines.join("\n") + &noise;
            if let Ok(options) = toml::from_str::<Options>(&text) {
                let _ = Settings::resolve(options);
            }
        }
    }
}
