//! Deterministic generator of realistic chat-transcript workloads in the
//! interchange format (DESIGN.md §4), together with the ground truth a test
//! needs to check redaction: every visitor's identity and every piece of
//! personal data they typed.
//!
//! Properties the output keeps, which tests may rely on:
//!
//! * Same [`WorkloadConfig`] → byte-identical output (own PRNG, no floating
//!   point transcendental functions, no hash-order dependence).
//! * Lines are sorted globally by `ts` (ties broken by transcript order), so a
//!   transcript's first line — which always carries `visitor` — comes first.
//! * `visitor` objects are identical on every line of one transcript; the
//!   email's letter case may differ between transcripts of one visitor.
//!   [`VisitorTruth::email`] is the lower-case form.
//! * Every email address, phone number (`+` international form) and IP address
//!   that appears in a transcript's text or form values is either the
//!   visitor's own (`email`, `phone`, `ip`) or listed in
//!   [`VisitorTruth::typed_pii`]; only visitor lines contain them. Operator,
//!   bot and system lines contain PII-free look-alikes only (order numbers,
//!   prices, dates, versions, tracking numbers).
//! * Emails, phones, internal ids and IPs are unique across visitors, typed
//!   ones included, so erasing one visitor never has to touch another's data.
//! * Email domains are reserved names (`example.com`, `*.example`), IPv6
//!   addresses lie in the documentation prefix `2001:db8::/32`.
//!
//! The output is streamed: memory holds the truth summary, one small plan
//! entry per transcript and the transcripts that are open at the current
//! time, never the lines.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::io::{self, Write};

use base64::Engine as _;

/// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch.
pub const DEFAULT_START_UNIX_MS: i64 = 1_704_067_200_000;

const DAY_MS: i64 = 86_400_000;

/// What to generate. All ranges are inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub visitors: usize,
    /// Transcripts per visitor, default (1, 5).
    pub transcripts_per_visitor: (u32, u32),
    /// Lines (messages, forms, consent events, files) per transcript, default (4, 16).
    pub messages_per_transcript: (u32, u32),
    /// Probability that a transcript contains one uploaded file, default 0.03.
    pub file_probability: f64,
    /// File size range in bytes, spread log-uniformly, default (1024, 1 << 20).
    pub file_size: (usize, usize),
    /// Earliest transcript start, default 2024-01-01T00:00:00Z.
    pub start_unix_ms: i64,
    /// Transcripts start within this many days after `start_unix_ms`, default 365.
    pub span_days: u32,
    /// Probability that a visitor's or operator's text runs long (a pasted
    /// error log, order history or step-by-step explanation of 300 to 3,000
    /// characters), default 0. At 0 no random number is drawn for it, so
    /// the default workload is what it always was.
    pub long_text_probability: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: 0,
            visitors: 100,
            transcripts_per_visitor: (1, 5),
            messages_per_transcript: (4, 16),
            file_probability: 0.03,
            file_size: (1024, 1 << 20),
            start_unix_ms: DEFAULT_START_UNIX_MS,
            span_days: 365,
            long_text_probability: 0.0,
        }
    }
}

impl WorkloadConfig {
    /// Traffic that looks like a support desk's: longer conversations, some
    /// long texts, and screenshots and PDFs of 50 to 500 KB in a few percent
    /// of transcripts, which then carry most of the bytes (the "support"
    /// profile of the comparison harness; the default is the "chat" one).
    pub fn support_desk(seed: u64, visitors: usize) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            visitors,
            transcripts_per_visitor: (1, 3),
            messages_per_transcript: (6, 26),
            file_probability: 0.025,
            file_size: (50_000, 500_000),
            long_text_probability: 0.06,
            ..WorkloadConfig::default()
        }
    }
}

/// Ground truth about one visitor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VisitorTruth {
    /// Lower-case form; transcripts may show it in another letter case.
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    /// The `visitor.id` value, e.g. `v-88172`.
    pub internal_id: Option<String>,
    pub ip: Option<String>,
    /// Every email/phone/IP string the visitor typed inside message text or
    /// form values, exactly as written, each once, in order of appearance.
    pub typed_pii: Vec<String>,
    /// The visitor's transcript ids, oldest first.
    pub transcripts: Vec<String>,
}

impl VisitorTruth {
    /// The truth as a JSON object (`null` for absent optional fields).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "email": self.email,
            "name": self.name,
            "phone": self.phone,
            "internal_id": self.internal_id,
            "ip": self.ip,
            "typed_pii": self.typed_pii,
            "transcripts": self.transcripts,
        })
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadSummary {
    pub lines: u64,
    pub bytes: u64,
    pub transcripts: u64,
    pub visitors: Vec<VisitorTruth>,
}

impl WorkloadSummary {
    /// The visitors' truth as a JSON array.
    pub fn truth_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.visitors.iter().map(VisitorTruth::to_json).collect())
    }
}

/// Writes the workload described by `config` to `out`, one JSON object per
/// line, and returns what it wrote. `out` is written through an internal
/// buffer and flushed at the end.
pub fn generate<W: Write>(config: &WorkloadConfig, out: W) -> io::Result<WorkloadSummary> {
    check_config(config)?;
    let mut g = Gen::new(config);
    g.make_visitors();
    let plans = g.plan_transcripts();
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut next = 0usize;
    let mut summary = WorkloadSummary {
        transcripts: plans.len() as u64,
        ..WorkloadSummary::default()
    };
    loop {
        while next < plans.len() && heap.peek().is_none_or(|top| plans[next].start <= top.ts) {
            let tx = g.open_transcript(next as u64, &plans[next]);
            heap.push(Pending {
                ts: tx.ts,
                ord: next as u64,
                tx: Box::new(tx),
            });
            next += 1;
        }
        let Some(mut p) = heap.pop() else { break };
        g.emit(&mut p.tx)?;
        out.write_all(&g.line)?;
        summary.lines += 1;
        summary.bytes += g.line.len() as u64;
        p.tx.pos += 1;
        if p.tx.pos < p.tx.slots.len() {
            let slot = p.tx.slots[p.tx.pos];
            p.tx.ts += gap_ms(&mut p.tx.rng, slot);
            p.ts = p.tx.ts;
            heap.push(p);
        }
    }
    out.flush()?;
    summary.visitors = g.visitors;
    Ok(summary)
}

fn check_config(c: &WorkloadConfig) -> io::Result<()> {
    let bad = |what: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            what.to_string(),
        ))
    };
    if c.transcripts_per_visitor.0 > c.transcripts_per_visitor.1 {
        return bad("transcripts_per_visitor: minimum is greater than maximum");
    }
    if c.messages_per_transcript.0 > c.messages_per_transcript.1 {
        return bad("messages_per_transcript: minimum is greater than maximum");
    }
    if c.messages_per_transcript.1 == 0 {
        return bad("messages_per_transcript: maximum must be at least 1");
    }
    if c.file_size.0 > c.file_size.1 {
        return bad("file_size: minimum is greater than maximum");
    }
    if c.file_probability.is_nan() || !(0.0..=1.0).contains(&c.file_probability) {
        return bad("file_probability must lie in 0..=1");
    }
    if c.long_text_probability.is_nan() || !(0.0..=1.0).contains(&c.long_text_probability) {
        return bad("long_text_probability must lie in 0..=1");
    }
    if c.span_days == 0 {
        return bad("span_days must be at least 1");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// PRNG: SplitMix64 for seeding, xoshiro256** for the streams.

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

const STREAM_VISITOR: u64 = 1;
const STREAM_TRANSCRIPT: u64 = 2;

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut s = [0u64; 4];
        for x in &mut s {
            *x = splitmix64(&mut sm);
        }
        Rng { s }
    }

    /// An independent stream for (`seed`, `stream`, `index`).
    fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let mut sm = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let a = splitmix64(&mut sm);
        let mut sm2 = a ^ index.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
        Rng::new(splitmix64(&mut sm2))
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn digits(&mut self, out: &mut String, n: usize) {
        for _ in 0..n {
            out.push((b'0' + self.below(10) as u8) as char);
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Log-uniform in `lo..=hi` (`lo` taken as at least 1). Uses only
    /// integer arithmetic and exactly rounded float operations, so the
    /// result is the same on every platform.
    fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        /// 2^(j/16) for j in 0..=16.
        #[rustfmt::skip]
        const POW2_16THS: [f64; 17] = [
            1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916,
            1.189207115002721, 1.241857812073484, 1.2968395546510096, 1.3542555469368927,
            std::f64::consts::SQRT_2, 1.4768261459394993, 1.5422108254079407, 1.6104903319492543,
            1.681792830507429, 1.7562521603732995, 1.8340080864093424, 1.9152065613971474, 2.0,
        ];
        let lo = lo.max(1) as u64;
        let hi = (hi as u64).max(lo);
        let klo = 63 - lo.leading_zeros() as u64;
        let khi = 64 - hi.leading_zeros() as u64; // exclusive
        for _ in 0..64 {
            // Exponent in 1/4096 octaves, uniform over the octaves spanned.
            let e = self.range(klo << 12, (khi << 12) - 1);
            let (k, frac) = (e >> 12, (e & 4095) as usize);
            let (j, t) = (frac >> 8, (frac & 255) as f64 / 256.0);
            let m = POW2_16THS[j] + (POW2_16THS[j + 1] - POW2_16THS[j]) * t;
            let v = (m * (1u64 << k) as f64) as u64;
            if (lo..=hi).contains(&v) {
                return v as usize;
            }
        }
        self.range(lo, hi) as usize
    }
}

// ---------------------------------------------------------------------------
// Time.

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m as u32, d as u32)
}

fn push_ts(out: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
}

/// Relative chat volume per UTC hour (a site with mostly European and
/// American visitors).
#[rustfmt::skip]
const HOUR_WEIGHTS: [u64; 24] = [
    3, 2, 2, 2, 2, 3, 5, 8, 11, 13, 14, 14, 13, 13, 14, 15, 15, 14, 12, 10, 8, 6, 5, 4,
];

fn time_of_day_ms(rng: &mut Rng) -> i64 {
    let total: u64 = HOUR_WEIGHTS.iter().sum();
    let mut r = rng.below(total);
    let mut hour = 0;
    for (h, w) in HOUR_WEIGHTS.iter().enumerate() {
        if r < *w {
            hour = h;
            break;
        }
        r -= w;
    }
    hour as i64 * 3_600_000 + rng.below(3_600_000) as i64
}

// ---------------------------------------------------------------------------
// People.

struct Locale {
    first: &'static [&'static str],
    last: &'static [&'static str],
    domains: &'static [&'static str],
    phone: fn(&mut Rng) -> String,
    lang: &'static str,
}

#[rustfmt::skip]
const LOCALES: [Locale; 8] = [
    Locale {
        first: &[
            "James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda",
            "Emily", "Daniel", "Ashley", "Christopher", "Jessica", "Matthew", "Sarah", "Andrew",
            "Olivia", "Joshua", "Madison", "Tyler", "Brianna", "Kevin", "Megan", "Jordan",
            "Mary Beth", "DeShawn",
        ],
        last: &[
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
            "Rodriguez", "Martinez", "Wilson", "Anderson", "Thomas", "Moore", "Jackson", "Lee",
            "Harris", "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott",
        ],
        domains: &[
            "example.com", "mail.example", "inbox.example", "example.net", "icloud.example",
        ],
        phone: phone_us,
        lang: "en",
    },
    Locale {
        first: &[
            "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Charlie",
            "Poppy", "Thomas", "Sophie", "Ann", "William", "Grace", "Alfie", "Freya", "Archie",
            "Imogen", "Rhys", "Siobhan", "Callum", "Niamh", "Ewan",
        ],
        last: &[
            "Taylor", "Davies", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Robinson",
            "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lee",
            "Martin", "Clarke", "O'Brien", "Fitzgerald", "McDonald", "Campbell", "Ap Rhys",
        ],
        domains: &[
            "example.co.example", "example.org", "mail.example", "btmail.example",
        ],
        phone: phone_gb,
        lang: "en",
    },
    Locale {
        first: &[
            "Jürgen", "Lukas", "Anna", "Leonie", "Maximilian", "Sophie", "Felix", "Hannah",
            "Jonas", "Lea", "Paul", "Marie", "Tobias", "Katharina", "Stefan", "Sabine", "Uwe",
            "Birgit", "Björn", "Jörg", "Günter", "Annegret", "Niklas", "Franziska",
        ],
        last: &[
            "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
            "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
            "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Weiß", "Groß",
        ],
        domains: &[
            "posteingang.example", "web.example", "gmx.example", "example.org",
        ],
        phone: phone_de,
        lang: "de",
    },
    Locale {
        first: &[
            "Élodie", "François", "Camille", "Léa", "Hugo", "Chloé", "Louis", "Manon", "Théo",
            "Inès", "Jean-Luc", "Marie-Claire", "Mathéo", "Zoé", "Noémie", "Benoît", "Amélie",
            "Cédric", "Gaëlle", "Hélène", "Jérôme", "Sébastien",
        ],
        last: &[
            "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
            "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garnier", "Faure",
            "Rousseau", "Blanc", "Guérin", "Boyer", "Chevalier", "de la Fontaine",
        ],
        domains: &[
            "courriel.example", "orange.example", "free.example", "example.net",
        ],
        phone: phone_fr,
        lang: "fr",
    },
    Locale {
        first: &[
            "José", "María", "Carmen", "Javier", "Lucía", "Alejandro", "Sofía", "Pablo", "Martina",
            "Sergio", "Paula", "Álvaro", "Andrés", "María José", "Nuria", "Iñaki", "Begoña",
            "Raúl", "Inés", "Óscar",
        ],
        last: &[
            "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
            "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz",
            "Álvarez", "Romero", "Núñez", "Castillo", "Ortega", "Iglesias",
        ],
        domains: &[
            "correo.example", "example.com", "telefonica.example", "mail.example",
        ],
        phone: phone_es,
        lang: "es",
    },
    Locale {
        first: &[
            "Yuki", "Haruto", "Sakura", "Hiroshi", "Aoi", "Ren", "Yui", "Sota", "Hina", "Takeshi",
            "Naoko", "Kenji", "Ayaka", "Daiki", "Mei", "Ryo", "Emi", "Shota", "Kaori", "Yusuke",
            "Shōta", "Yūko",
        ],
        last: &[
            "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
            "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue",
            "Kimura", "Hayashi", "Shimizu", "Saito", "Ōta", "Kōno",
        ],
        domains: &[
            "docomo.example", "yahoo.example", "example.jp.example", "example.com",
        ],
        phone: phone_jp,
        lang: "ja",
    },
    Locale {
        first: &[
            "Priya", "Arjun", "Ananya", "Rahul", "Aditi", "Vikram", "Sneha", "Rohan", "Kavya",
            "Aarav", "Ishita", "Siddharth", "Lakshmi", "Karthik", "Deepika", "Manoj", "Pooja",
            "Sanjay", "Divya", "Venkatesh",
        ],
        last: &[
            "Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Singh", "Kumar", "Nair", "Menon", "Rao",
            "Joshi", "Mehta", "Chatterjee", "Banerjee", "Das", "Pillai", "Agarwal", "Desai",
            "Kapoor", "Krishnan", "Subramanian",
        ],
        domains: &[
            "rediffmail.example", "example.in.example", "mail.example", "example.org",
        ],
        phone: phone_in,
        lang: "en",
    },
    Locale {
        first: &[
            "João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Larissa", "Rafael",
            "Júlia", "Matheus", "Letícia", "Thiago", "Camila", "Felipe", "Fernanda", "Ana Luíza",
            "João Pedro", "Vitória", "Caio",
        ],
        last: &[
            "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
            "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo", "Gonçalves",
            "Barbosa", "Rocha", "Conceição", "Nascimento",
        ],
        domains: &[
            "uol.example", "bol.example", "example.com.example", "example.net",
        ],
        phone: phone_br,
        lang: "pt",
    },
];

/// Domains for "my other address" (work, school).
#[rustfmt::skip]
const WORK_DOMAINS: &[&str] = &[
    "work.example", "acme-corp.example", "initech.example", "globex.example", "uni-bonn.example",
    "student.univ.example", "mail.hooli.example", "example.org",
];

fn digits_str(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    rng.digits(&mut s, n);
    s
}

fn nonzero_digits(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    s.push((b'1' + rng.below(9) as u8) as char);
    rng.digits(&mut s, n - 1);
    s
}

fn phone_us(rng: &mut Rng) -> String {
    let area = rng.pick(&[
        "212", "310", "415", "512", "617", "646", "702", "773", "206", "305",
    ]);
    format!("+1 {area}-555-{}", digits_str(rng, 4))
}

fn phone_gb(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("+44 20 7946 {}", digits_str(rng, 4)),
        1 => format!("+44 161 496 {}", digits_str(rng, 4)),
        _ => format!("+44 7700 9{}", digits_str(rng, 5)),
    }
}

fn phone_de(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("+49 30 {}", nonzero_digits(rng, 7)),
        1 => format!("+49 89 {}", nonzero_digits(rng, 8)),
        _ => format!(
            "+49 15{} {}",
            rng.pick(&["1", "2", "7", "9"]),
            digits_str(rng, 8)
        ),
    }
}

fn phone_fr(rng: &mut Rng) -> String {
    let lead = rng.pick(&["1", "4", "6", "7"]);
    format!(
        "+33 {lead} {} {} {} {}",
        digits_str(rng, 2),
        digits_str(rng, 2),
        digits_str(rng, 2),
        digits_str(rng, 2)
    )
}

fn phone_es(rng: &mut Rng) -> String {
    if rng.chance(0.6) {
        format!(
            "+34 6{} {} {}",
            digits_str(rng, 2),
            digits_str(rng, 3),
            digits_str(rng, 3)
        )
    } else {
        format!(
            "+34 91 {} {} {}",
            digits_str(rng, 3),
            digits_str(rng, 2),
            digits_str(rng, 2)
        )
    }
}

fn phone_jp(rng: &mut Rng) -> String {
    let lead = rng.pick(&["3", "6", "90", "80", "70"]);
    format!("+81 {lead}-{}-{}", digits_str(rng, 4), digits_str(rng, 4))
}

fn phone_in(rng: &mut Rng) -> String {
    let lead = rng.pick(&["9", "8", "7"]);
    format!("+91 {lead}{} {}", digits_str(rng, 4), digits_str(rng, 5))
}

fn phone_br(rng: &mut Rng) -> String {
    let area = rng.pick(&["11", "21", "31", "41", "51", "61", "71", "81"]);
    format!("+55 {area} 9{}-{}", digits_str(rng, 4), digits_str(rng, 4))
}

/// ASCII form of a name part for email local parts.
fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let r: &str = match c {
            'ä' | 'Ä' => "ae",
            'ö' | 'Ö' => "oe",
            'ü' | 'Ü' => "ue",
            'ß' => "ss",
            'á' | 'à' | 'â' | 'ã' | 'Á' | 'À' | 'Â' | 'Ã' => "a",
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => "e",
            'í' | 'ì' | 'î' | 'ï' | 'Í' => "i",
            'ó' | 'ò' | 'ô' | 'õ' | 'ō' | 'Ó' | 'Ō' => "o",
            'ú' | 'ù' | 'û' | 'ū' | 'Ú' => "u",
            'ç' | 'Ç' => "c",
            'ñ' | 'Ñ' => "n",
            '\'' | ' ' => "",
            '-' => "-",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(r);
    }
    out
}

/// A different letter case of an email: `Ann.Lee@Example.com` style,
/// upper-case local part only, or all upper case.
fn case_variant(rng: &mut Rng, email: &str) -> String {
    match rng.below(3) {
        0 => {
            let mut out = String::with_capacity(email.len());
            let mut start = true;
            for c in email.chars() {
                out.push(if start { c.to_ascii_uppercase() } else { c });
                start = matches!(c, '.' | '_' | '-' | '@');
            }
            out
        }
        1 => {
            let at = email.find('@').unwrap_or(email.len());
            let mut out = email[..at].to_ascii_uppercase();
            out.push_str(&email[at..]);
            out
        }
        _ => email.to_ascii_uppercase(),
    }
}

fn random_ipv4(rng: &mut Rng) -> String {
    #[rustfmt::skip]
    const FIRST: [u8; 20] = [
        23, 31, 37, 45, 62, 77, 81, 84, 89, 91, 93, 104, 109, 151, 176, 185, 188, 195, 203, 213,
    ];
    format!(
        "{}.{}.{}.{}",
        rng.pick(&FIRST),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

/// An address in 2001:db8::/32, RFC 5952 text form.
fn random_ipv6(rng: &mut Rng) -> String {
    let mut g = [0u16; 8];
    g[0] = 0x2001;
    g[1] = 0x0db8;
    for x in g.iter_mut().skip(2) {
        *x = rng.below(0x1_0000) as u16;
    }
    // Typical addresses have a run of zero groups.
    match rng.below(3) {
        0 => g[4..7].fill(0),
        1 => g[3..6].fill(0),
        _ => {}
    }
    if rng.chance(0.3) {
        g[7] = rng.range(1, 255) as u16;
    }
    // Longest run of >= 2 zero groups is compressed.
    let (mut best, mut best_len, mut i) = (8, 0, 0);
    while i < 8 {
        if g[i] == 0 {
            let j = (i..8).find(|&j| g[j] != 0).unwrap_or(8);
            if j - i > best_len {
                best = i;
                best_len = j - i;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let hex = |v: &[u16]| {
        v.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len >= 2 {
        format!("{}::{}", hex(&g[..best]), hex(&g[best + best_len..]))
    } else {
        hex(&g)
    }
}

fn fingerprint(kind: u8, s: &str) -> u64 {
    // FNV-1a over a normalised form: emails/IPs lower-case, phones digits only.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ kind as u64;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for b in s.bytes() {
        match kind {
            FP_PHONE if !b.is_ascii_digit() => {}
            _ => eat(b.to_ascii_lowercase()),
        }
    }
    h
}

const FP_EMAIL: u8 = 1;
const FP_PHONE: u8 = 2;
const FP_IP: u8 = 3;
const FP_ID: u8 = 4;

struct Meta {
    locale: u8,
    first: &'static str,
    last: &'static str,
}

// ---------------------------------------------------------------------------
// Transcripts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    VisitorText,
    OperatorText,
    BotText,
    SystemStart,
    SystemJoin,
    SystemEnd,
    PrechatForm,
    OfflineForm,
    Consent,
    File,
}

impl Slot {
    fn from(self) -> &'static str {
        match self {
            Slot::VisitorText
            | Slot::PrechatForm
            | Slot::OfflineForm
            | Slot::Consent
            | Slot::File => "visitor",
            Slot::OperatorText => "operator",
            Slot::BotText => "bot",
            Slot::SystemStart | Slot::SystemJoin | Slot::SystemEnd => "system",
        }
    }
}

struct Plan {
    start: i64,
    visitor: u32,
}

struct Tx {
    id: String,
    visitor: usize,
    rng: Rng,
    slots: Vec<Slot>,
    pos: usize,
    ts: i64,
    visitor_json: Vec<u8>,
    shown_email: String,
    topic: usize,
    order_no: String,
    operator: &'static str,
    greeted: bool,
    asked: bool,
    bot_spoke: bool,
    /// The template used last, so a transcript does not repeat itself.
    last_template: &'static str,
}

struct Pending {
    ts: i64,
    ord: u64,
    tx: Box<Tx>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.ord) == (o.ts, o.ord)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Reversed: BinaryHeap is a max-heap, we want the earliest line.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.ts, o.ord).cmp(&(self.ts, self.ord))
    }
}

fn gap_ms(rng: &mut Rng, slot: Slot) -> i64 {
    // Minimum of two uniforms: short gaps are more common than long ones.
    let mut skew = |lo: u64, hi: u64| rng.range(lo, hi).min(rng.range(lo, hi)) as i64;
    match slot {
        Slot::VisitorText => skew(3_000, 150_000),
        Slot::OperatorText => skew(6_000, 120_000),
        Slot::BotText => skew(300, 2_500),
        Slot::SystemStart => 0,
        Slot::SystemJoin => skew(5_000, 300_000),
        Slot::SystemEnd => skew(1_000, 90_000),
        Slot::PrechatForm | Slot::OfflineForm => skew(5_000, 60_000),
        Slot::Consent => skew(500, 20_000),
        Slot::File => skew(15_000, 180_000),
    }
}

fn plan_slots(rng: &mut Rng, n: usize, file_probability: f64) -> Vec<Slot> {
    use Slot::*;
    let form = rng.chance(1.0 / 3.0);
    let prechat = form && rng.chance(0.7);
    let consent = rng.chance(0.25);
    let file = rng.chance(file_probability);
    let mut s = Vec::with_capacity(n);
    s.push(if prechat {
        PrechatForm
    } else if rng.chance(0.12) {
        SystemStart
    } else {
        VisitorText
    });
    let mut joined = false;
    for i in 1..n {
        let prev = s[i - 1];
        let r = rng.below(100);
        let mut next = match prev {
            _ if i == 1 => match r {
                0..=49 => BotText,
                50..=79 => SystemJoin,
                _ => OperatorText,
            },
            VisitorText => match r {
                0..=59 => OperatorText,
                60..=89 => VisitorText,
                _ => BotText,
            },
            OperatorText => match r {
                0..=69 => VisitorText,
                _ => OperatorText,
            },
            BotText => match r {
                0..=69 => VisitorText,
                _ => SystemJoin,
            },
            SystemJoin => OperatorText,
            _ => match r {
                0..=49 => BotText,
                50..=79 => SystemJoin,
                _ => VisitorText,
            },
        };
        if next == SystemJoin {
            if joined {
                next = OperatorText;
            }
            joined = true;
        }
        s.push(next);
    }
    if n >= 6 && rng.chance(0.35) {
        s[n - 1] = SystemEnd;
    }
    if form && !prechat {
        let i = if n > 2 && s[n - 1] == SystemEnd {
            n - 2
        } else {
            n - 1
        };
        s[i] = OfflineForm;
    }
    let place = |rng: &mut Rng, s: &mut Vec<Slot>, what: Slot| {
        let free = |x: Slot| matches!(x, VisitorText | OperatorText | BotText);
        let candidates = s.iter().skip(1).filter(|x| free(**x)).count();
        if candidates == 0 {
            return;
        }
        let mut k = rng.below(candidates as u64) as usize;
        for x in s.iter_mut().skip(1) {
            if free(*x) {
                if k == 0 {
                    *x = what;
                    return;
                }
                k -= 1;
            }
        }
    };
    if consent {
        place(rng, &mut s, Consent);
    }
    if file {
        place(rng, &mut s, File);
    }
    s
}

// ---------------------------------------------------------------------------
// Text.

#[rustfmt::skip]
const TOPICS: [&str; 7] = [
    "Orders", "Shipping", "Account", "Returns", "Billing", "Products", "Technical",
];

/// Opening questions by topic.
const OPENINGS: [&[&str]; 7] = [
    &[
        "Hi, I placed order {order} on {date} and it still says processing. Can you check?",
        "hello, where is my order {order}? it's been more than a week",
        "Hi there! Quick question about my order {order} — can I still add a second item to it?",
        "Good morning, I need to change the delivery address on {order} before it ships",
        "I ordered 2 of the {product} but the confirmation only shows 1, order {order}",
    ],
    &[
        "My parcel was supposed to arrive on {date} but tracking {tracking} hasn't moved since.",
        "Do you ship to {country}? And how much is express shipping?",
        "The courier says delivered but I have nothing. Order {order}.",
        "hi! the box arrived damaged, the {product} inside is cracked :(",
        "Can I pick up my order at a store instead? It's {order}",
    ],
    &[
        "I can't log in, it keeps saying my password is wrong even after the reset",
        "How do I change the email address on my account?",
        "I got a message that my account was locked after too many attempts, what do I do?",
        "Hello, please delete my account and all my data. Thank you.",
        "the 2-factor code never arrives, I've tried 5 times since {time}",
    ],
    &[
        "I returned the jacket on {date}, when will I get my refund of {price}?",
        "I'd like to return order {order}, the size is wrong",
        "Hi, the return label doesn't print, it shows error {err}",
        "Can I exchange the {product} for a different colour instead of a refund?",
    ],
    &[
        "You charged me {price} twice for the same order!! {order}",
        "Can I get an invoice with my company VAT number for order {order}?",
        "my card ending {last4} was declined but the money left my account",
        "Is it possible to pay in 3 instalments? The total is {price}",
    ],
    &[
        "Is the {product} compatible with version {version} of the app?",
        "Does the {product} come in black? The page only shows grey",
        "What's the difference between the {product} and the Pro model? Worth the extra {price}?",
        "When will the {product} be back in stock?",
    ],
    &[
        "The app crashes on startup since the update to {version}",
        "checkout page shows error {err} when I click pay",
        "Your website is really slow today, the basket takes ~30 seconds to load",
        "I'm on firmware {version} and the {product} won't pair over Bluetooth anymore",
    ],
];

const VISITOR_FOLLOWUPS: &[&str] = &[
    "ok, thanks",
    "Yes, that's right.",
    "It was {price} in total including shipping",
    "I ordered it on {date}, I still have the confirmation email",
    "The order number is {order}",
    "hmm, still not working on my side",
    "Could you send me a confirmation of that please?",
    "great, thank you so much for your help!",
    "Sorry, one more question — do you also sell the {product}?",
    "no, nothing has arrived yet. Tracking says {tracking}",
    "I'm using version {version} on Android 14",
    "It says 'payment pending' since {time}",
    "ah ok. how long does that usually take?",
    "I already tried clearing the cache and restarting, same thing",
    "Perfect, that works for me 👍",
    "That's really not acceptable, I've been waiting since {date}",
    "Can you make sure it's delivered before {date}? It's a birthday present",
    "what do you mean? I paid {price} already",
    "Yes please go ahead",
    "Is there a phone line I can call instead? This chat keeps disconnecting",
    "Honestly this is the third time I'm writing about this. First I was told the parcel was lost, \
     then that it was delivered to a neighbour, and now the tracking page shows nothing at all. \
     I just want either the {product} or my {price} back.",
    "Just to explain what happened: I added the {product} to the basket, applied the code from \
     your newsletter, paid with PayPal and then got an error page. Now I don't know if the order \
     went through or not, and I can't find anything under my orders.",
];

/// Visitor sentences carrying typed personal data, by kind: email, phone, IP.
const PII_EMAIL: &[&str] = &[
    "hi, my other address is {pii}",
    "Please send the invoice to {pii} instead.",
    "I registered with {pii} I think, or maybe the other one",
    "can you check under {pii}? That's the email I used for {order}",
    "my email is {pii}",
    "The confirmation went to {pii} (my work address)",
    "You can also reach me by email: {pii}",
];
const PII_PHONE: &[&str] = &[
    "you can call me on {pii} if that's easier",
    "My number is {pii}, the courier can ring me",
    "Please text me at {pii} when it's shipped.",
    "call me: {pii} (after 5pm is best)",
    "I'm on {pii} if the chat drops",
];
const PII_IP: &[&str] = &[
    "the error page says my IP is {pii} and that I'm blocked",
    "our office IP is {pii}, can you whitelist it?",
    "It says 'login from unknown device at {pii}' — that wasn't me!",
    "I'm connecting from {pii} if that helps",
    "Access denied for {pii}, request id {err}",
];

const OPERATOR_GREETINGS: &[&str] = &[
    "Hi {first}, thanks for contacting us! My name is {op}, I'll be helping you today.",
    "Hello {first}, this is {op} from customer support. How can I help?",
    "Hi there, {op} here 😊 Let me take a look at this for you.",
    "Good day {first}! {op} from the support team. Give me a moment to read through your message.",
];

const OPERATOR_REPLIES: [&[&str]; 7] = [
    &[
        "I can see order {order} was shipped on {date} with tracking number {tracking}.",
        "Your order {order} is packed and leaves our warehouse today.",
        "I've updated the order, you'll get a new confirmation shortly.",
        "The order {order} shows 2 × {product}, total {price}. Is that correct?",
    ],
    &[
        "I've opened an investigation with the courier (case {err}); they usually answer within 48 hours.",
        "Express shipping to {country} is {price} and takes 2–3 working days.",
        "Tracking {tracking} shows the parcel at the local depot since {date}.",
        "I'm sorry about the damage! I'll send a replacement free of charge.",
    ],
    &[
        "I've reset the lock on your account; a reset link goes to the address on file within a few minutes.",
        "You can change it under Settings → Account → Email. You'll need to confirm the new address.",
        "For security I can't change that in chat, but I've sent a verification link to the address on file.",
        "Your deletion request is registered under reference {err}; it completes within 30 days.",
    ],
    &[
        "I've issued a refund of {price} — it usually takes 3–5 business days to show on your statement.",
        "Of course! I've emailed you a prepaid return label for {order}.",
        "The return arrived on {date} and the refund was processed the same day.",
        "An exchange is no problem, which colour would you like?",
    ],
    &[
        "I see two authorisations of {price}; the second one is released automatically within 7 days.",
        "I've attached the VAT invoice to your account, you'll find it under Orders → {order}.",
        "Instalments are available for orders over {price} at checkout.",
        "The payment with the card ending {last4} was declined by your bank, code {err}.",
    ],
    &[
        "Yes, the {product} works with version {version} and newer.",
        "The {product} comes in black, grey and sand; black is back in stock on {date}.",
        "The Pro model adds a larger battery and costs {price}.",
        "I've put you on the restock notification list for the {product}.",
    ],
    &[
        "That's a known issue in {version}; the fix is in {version} which rolls out this week.",
        "Could you try a different browser? Error {err} usually means the session expired.",
        "Our status page shows degraded performance since {time}, the team is on it.",
        "Please hold the pairing button for 10 seconds until the light blinks twice.",
    ],
];

const OPERATOR_GENERIC: &[&str] = &[
    "Let me check that for you, one moment please.",
    "Thanks for your patience!",
    "Could you confirm the order number, please? It starts with #A-.",
    "Is there anything else I can help you with today?",
    "I understand, I'm sorry for the trouble.",
    "I've added a note to your case so my colleagues can see the history.",
    "Great, glad I could help! Have a lovely day.",
    "I'm really sorry for the back and forth. I've escalated this to our logistics team with \
     priority, and I've also set a reminder to check on it myself on {date}. You'll hear from us \
     either way, and if the parcel doesn't turn up we'll refund you in full.",
    "Here's what I can offer: we keep the original order open, ship a replacement today with \
     express delivery at no cost, and once the first parcel is returned to us we simply cancel \
     it. Would that work for you?",
];

const BOT_OPENERS: &[&str] = &[
    "Hi! I'm ShopBot 🤖 I can help with orders, shipping and returns. What can I do for you?",
    "Thanks! An agent will join shortly. Current waiting time is about {n} minutes.",
    "All our agents are busy right now. You're number {n} in the queue.",
];
const BOT_TEXTS: &[&str] = &[
    "Did you know? You can track your order any time at shop.example/track.",
    "I found these articles that might help: \"Returns & refunds\", \"Delivery times\".",
    "Was this answer helpful? Reply yes or no.",
    "Thanks for waiting! An agent will be with you in about {n} minutes.",
];

const CONSENT_PROMPTS: &[&str] = &[
    "May we keep this conversation for 12 months to improve our service?",
    "Do you agree to receive our newsletter with offers and news?",
    "Allow us to contact you by phone about this request?",
    "We use your data to answer your request. Do you accept the privacy policy (v3.2)?",
    "Can we share your order details with the courier to arrange delivery?",
];

#[rustfmt::skip]
const OPERATORS: &[&str] = &[
    "Maria", "Tom", "Aylin", "Kwame", "Sofia", "Lars", "Chen", "Priti", "Marco", "Hanna",
];
#[rustfmt::skip]
const PRODUCTS: &[&str] = &[
    "AeroPress Go", "Trail Runner 2", "SoundLoop earbuds", "Linen duvet cover", "Kettle K-200",
    "SmartPlug mini", "Merino hoodie", "Desk lamp Luma",
];
#[rustfmt::skip]
const COUNTRIES: &[&str] = &[
    "Norway", "Switzerland", "Canada", "Japan", "Brazil", "India", "Ireland", "Mexico",
];
const DEPARTMENTS: &[&str] = &["Billing", "Returns", "Technical support", "Sales"];
#[rustfmt::skip]
const PAGES: &[&str] = &[
    "orders", "help/returns", "cart", "account/login", "products/kettle-k-200",
];

// ---------------------------------------------------------------------------
// The generator.

struct Gen<'a> {
    cfg: &'a WorkloadConfig,
    visitors: Vec<VisitorTruth>,
    meta: Vec<Meta>,
    /// Transcript plans per visitor: (start, number of transcripts).
    seen: HashSet<u64>,
    line: Vec<u8>,
    text: String,
    file: Vec<u8>,
}

impl<'a> Gen<'a> {
    fn new(cfg: &'a WorkloadConfig) -> Self {
        Gen {
            cfg,
            visitors: Vec::with_capacity(cfg.visitors),
            meta: Vec::with_capacity(cfg.visitors),
            seen: HashSet::new(),
            line: Vec::with_capacity(1024),
            text: String::with_capacity(512),
            file: Vec::new(),
        }
    }

    /// Inserts the fingerprint; false if it was already taken.
    fn claim(&mut self, kind: u8, s: &str) -> bool {
        self.seen.insert(fingerprint(kind, s))
    }

    fn unique(
        &mut self,
        kind: u8,
        rng: &mut Rng,
        mut make: impl FnMut(&mut Rng, u32) -> String,
    ) -> String {
        let mut attempt = 0;
        loop {
            let s = make(rng, attempt);
            if self.claim(kind, &s) {
                return s;
            }
            attempt += 1;
        }
    }

    fn make_visitors(&mut self) {
        let id_space = (self.cfg.visitors as u64 * 20).max(90_000);
        for i in 0..self.cfg.visitors {
            let mut rng = Rng::derive(self.cfg.seed, STREAM_VISITOR, i as u64);
            let li = rng.below(LOCALES.len() as u64) as usize;
            let loc = &LOCALES[li];
            let first = rng.pick(loc.first);
            let last = rng.pick(loc.last);
            let name = if li == 5 && rng.chance(0.1) {
                // Family name first, as Japanese visitors sometimes write it.
                format!("{last} {first}")
            } else {
                format!("{first} {last}")
            };
            let (f, l) = (ascii_fold(first), ascii_fold(last));
            let style = rng.below(7);
            let email = self.unique(FP_EMAIL, &mut rng, |rng, attempt| {
                let mut local = match style {
                    0 | 1 => format!("{f}.{l}"),
                    2 => format!("{f}{l}"),
                    3 => format!("{}.{l}", &f[..1]),
                    4 => format!("{f}_{l}"),
                    5 => format!("{l}.{f}"),
                    _ => format!("{f}{}", rng.range(70, 99)),
                };
                if attempt > 0 {
                    local.push_str(&rng.range(1, 10u64.pow(1 + attempt.min(5))).to_string());
                }
                format!("{local}@{}", rng.pick(loc.domains))
            });
            let phone = rng
                .chance(0.65)
                .then(|| self.unique(FP_PHONE, &mut rng, |rng, _| (loc.phone)(rng)));
            let internal_id = rng.chance(0.8).then(|| {
                self.unique(FP_ID, &mut rng, |rng, _| {
                    format!("v-{}", rng.range(10_000, 10_000 + id_space))
                })
            });
            let ip = rng.chance(0.9).then(|| {
                self.unique(FP_IP, &mut rng, |rng, _| {
                    if rng.chance(0.2) {
                        random_ipv6(rng)
                    } else {
                        random_ipv4(rng)
                    }
                })
            });
            self.visitors.push(VisitorTruth {
                email,
                name,
                phone,
                internal_id,
                ip,
                typed_pii: Vec::new(),
                transcripts: Vec::new(),
            });
            self.meta.push(Meta {
                locale: li as u8,
                first,
                last,
            });
        }
    }

    fn plan_transcripts(&mut self) -> Vec<Plan> {
        let span = self.cfg.span_days as u64;
        let (tmin, tmax) = self.cfg.transcripts_per_visitor;
        let mut plans = Vec::new();
        for i in 0..self.cfg.visitors {
            // A separate stream, so identity and schedule are independent.
            let mut rng = Rng::derive(self.cfg.seed ^ 0x5EED, STREAM_VISITOR, i as u64);
            let k = rng.range(tmin as u64, tmax as u64);
            for _ in 0..k {
                let day = rng.below(span) as i64;
                let start = self.cfg.start_unix_ms + day * DAY_MS + time_of_day_ms(&mut rng);
                plans.push(Plan {
                    start,
                    visitor: i as u32,
                });
            }
        }
        plans.sort_by_key(|p| (p.start, p.visitor));
        for (n, p) in plans.iter().enumerate() {
            self.visitors[p.visitor as usize]
                .transcripts
                .push(format!("t-{}", 1001 + n as u64));
        }
        plans
    }

    fn open_transcript(&mut self, ord: u64, plan: &Plan) -> Tx {
        let mut rng = Rng::derive(self.cfg.seed, STREAM_TRANSCRIPT, ord);
        let (mmin, mmax) = self.cfg.messages_per_transcript;
        let n = rng.range(mmin.max(1) as u64, mmax as u64) as usize;
        let slots = plan_slots(&mut rng, n, self.cfg.file_probability);
        let v = &self.visitors[plan.visitor as usize];
        let shown_email = if rng.chance(0.35) {
            case_variant(&mut rng, &v.email)
        } else {
            v.email.clone()
        };
        let mut vj = Vec::with_capacity(160);
        vj.extend_from_slice(b"{\"email\":");
        push_json_str(&mut vj, &shown_email);
        vj.extend_from_slice(b",\"name\":");
        push_json_str(&mut vj, &v.name);
        for (key, val) in [("phone", &v.phone), ("id", &v.internal_id), ("ip", &v.ip)] {
            if let Some(val) = val {
                let _ = write!(vj, ",\"{key}\":");
                push_json_str(&mut vj, val);
            }
        }
        vj.push(b'}');
        let order_no = order_number(&mut rng, plan.start);
        Tx {
            id: format!("t-{}", 1001 + ord),
            visitor: plan.visitor as usize,
            topic: rng.below(TOPICS.len() as u64) as usize,
            operator: rng.pick(OPERATORS),
            rng,
            slots,
            pos: 0,
            ts: plan.start,
            visitor_json: vj,
            shown_email,
            order_no,
            greeted: false,
            asked: false,
            bot_spoke: false,
            last_template: "",
        }
    }

    /// Builds the current line of `tx` into `self.line`.
    fn emit(&mut self, tx: &mut Tx) -> io::Result<()> {
        let slot = tx.slots[tx.pos];
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(b"{\"transcript\":");
        push_json_str(&mut line, &tx.id);
        line.extend_from_slice(b",\"ts\":\"");
        push_ts(&mut line, tx.ts);
        line.extend_from_slice(b"\",\"from\":\"");
        line.extend_from_slice(slot.from().as_bytes());
        line.push(b'"');
        if tx.pos == 0 || (slot.from() == "visitor" && tx.rng.chance(0.1)) {
            line.extend_from_slice(b",\"visitor\":");
            line.extend_from_slice(&tx.visitor_json);
        }
        match slot {
            Slot::PrechatForm | Slot::OfflineForm => {
                line.extend_from_slice(b",\"kind\":\"form\",\"form\":");
                self.form(tx, slot == Slot::OfflineForm, &mut line);
            }
            Slot::Consent => {
                let granted = tx.rng.chance(0.7);
                let _ = write!(
                    line,
                    ",\"kind\":\"consent\",\"consent\":{{\"granted\":{granted},\"prompt\":"
                );
                push_json_str(&mut line, tx.rng.pick(CONSENT_PROMPTS));
                line.push(b'}');
            }
            Slot::File => {
                line.extend_from_slice(b",\"kind\":\"file\",\"file\":");
                self.file(tx, &mut line)?;
            }
            _ => {
                let mut text = std::mem::take(&mut self.text);
                text.clear();
                match slot {
                    Slot::VisitorText => {
                        self.visitor_text(tx, &mut text);
                        self.long_text(tx, VISITOR_FOLLOWUPS, &mut text);
                    }
                    Slot::OperatorText => {
                        self.operator_text(tx, &mut text);
                        self.long_text(tx, OPERATOR_GENERIC, &mut text);
                    }
                    Slot::BotText => {
                        let pool = if tx.bot_spoke { BOT_TEXTS } else { BOT_OPENERS };
                        tx.bot_spoke = true;
                        self.expand(tx, pool, "", &mut text)
                    }
                    _ => self.system_text(tx, slot, &mut text),
                }
                line.extend_from_slice(b",\"kind\":\"text\",\"text\":");
                push_json_str(&mut line, &text);
                self.text = text;
            }
        }
        line.extend_from_slice(b"}\n");
        self.line = line;
        Ok(())
    }

    fn record_typed(&mut self, visitor: usize, s: &str) {
        let list = &mut self.visitors[visitor].typed_pii;
        if !list.iter().any(|x| x == s) {
            list.push(s.to_string());
        }
    }

    /// A fresh, globally unique email/phone/IP the visitor might type.
    fn other_pii(&mut self, tx: &mut Tx, kind: u8) -> String {
        let m = &self.meta[tx.visitor];
        let (f, l) = (ascii_fold(m.first), ascii_fold(m.last));
        let phone = LOCALES[m.locale as usize].phone;
        let mut rng = tx.rng.clone();
        let s = match kind {
            FP_EMAIL => self.unique(FP_EMAIL, &mut rng, |rng, attempt| {
                let local = match rng.below(4) {
                    0 => f.clone(),
                    1 => format!("{}{l}", &f[..1]),
                    2 => format!("{f}.{l}"),
                    _ => format!("{f}.{l}.{}", rng.range(1, 99)),
                };
                let extra = if attempt > 0 {
                    rng.range(2, 9999).to_string()
                } else {
                    String::new()
                };
                format!("{local}{extra}@{}", rng.pick(WORK_DOMAINS))
            }),
            FP_PHONE => self.unique(FP_PHONE, &mut rng, |rng, _| phone(rng)),
            _ => self.unique(FP_IP, &mut rng, |rng, _| {
                if rng.chance(0.3) {
                    random_ipv6(rng)
                } else {
                    random_ipv4(rng)
                }
            }),
        };
        tx.rng = rng;
        s
    }

    fn visitor_text(&mut self, tx: &mut Tx, out: &mut String) {
        if !tx.asked {
            tx.asked = true;
            self.expand(tx, OPENINGS[tx.topic], "", out);
            if tx.rng.chance(0.2) && out.len() < 120 {
                sentence_break(out);
                self.expand(tx, VISITOR_FOLLOWUPS, "", out);
            }
            return;
        }
        // Openings carry none, so 0.19 here makes ~15% of all visitor texts.
        if tx.rng.chance(0.19) {
            let v = tx.visitor;
            let r = tx.rng.below(100);
            let (pii, templates) = match r {
                0..=29 => (tx.shown_email.clone(), PII_EMAIL),
                30..=49 => (self.other_pii(tx, FP_EMAIL), PII_EMAIL),
                50..=69 => match self.visitors[v].phone.clone() {
                    Some(p) => (p, PII_PHONE),
                    None => (self.other_pii(tx, FP_PHONE), PII_PHONE),
                },
                70..=79 => (self.other_pii(tx, FP_PHONE), PII_PHONE),
                80..=89 => match self.visitors[v].ip.clone() {
                    Some(ip) => (ip, PII_IP),
                    None => (self.other_pii(tx, FP_IP), PII_IP),
                },
                _ => (self.other_pii(tx, FP_IP), PII_IP),
            };
            if tx.rng.chance(0.3) {
                self.expand(tx, VISITOR_FOLLOWUPS, "", out);
                if out.len() > 120 {
                    out.clear();
                } else {
                    sentence_break(out);
                }
            }
            self.expand(tx, templates, &pii, out);
            self.record_typed(v, &pii);
            return;
        }
        self.expand(tx, VISITOR_FOLLOWUPS, "", out);
        if tx.rng.chance(0.15) && out.len() < 120 {
            sentence_break(out);
            self.expand(tx, OPENINGS[tx.topic], "", out);
        }
    }

    /// With `long_text_probability`, runs `out` on to 300..=3,000
    /// characters: more sentences of `pool` and, for half of them, a pasted
    /// log excerpt. Draws nothing when the probability is 0.
    fn long_text(&mut self, tx: &mut Tx, pool: &[&'static str], out: &mut String) {
        let p = self.cfg.long_text_probability;
        if p <= 0.0 || !tx.rng.chance(p) {
            return;
        }
        let target = tx.rng.log_uniform(300, 3000);
        if tx.rng.chance(0.5) {
            out.push_str("\n\n");
            let mut paste = vec![0u8; target.saturating_sub(out.len()).max(64)];
            fill_text(&mut tx.rng, &mut paste);
            // fill_text writes ASCII words only.
            out.push_str(std::str::from_utf8(&paste).unwrap_or_default());
            return;
        }
        while out.len() < target {
            sentence_break(out);
            self.expand(tx, pool, "", out);
        }
    }

    fn operator_text(&mut self, tx: &mut Tx, out: &mut String) {
        if !tx.greeted {
            tx.greeted = true;
            self.expand(tx, OPERATOR_GREETINGS, "", out);
            return;
        }
        let topical = tx.rng.chance(0.6);
        let pool = if topical {
            OPERATOR_REPLIES[tx.topic]
        } else {
            OPERATOR_GENERIC
        };
        self.expand(tx, pool, "", out);
        if tx.rng.chance(0.2) && out.len() < 120 {
            sentence_break(out);
            self.expand(tx, OPERATOR_GENERIC, "", out);
        }
    }

    fn system_text(&mut self, tx: &mut Tx, slot: Slot, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match slot {
            Slot::SystemStart => write!(
                out,
                "Chat started on https://shop.example/{}",
                tx.rng.pick(PAGES)
            ),
            Slot::SystemJoin => {
                if tx.rng.chance(0.2) {
                    write!(
                        out,
                        "Chat transferred to {}; {} joined the chat",
                        tx.rng.pick(DEPARTMENTS),
                        tx.operator
                    )
                } else {
                    write!(out, "{} joined the chat", tx.operator)
                }
            }
            _ => match tx.rng.below(3) {
                0 => write!(out, "Visitor left the chat"),
                1 => write!(out, "Chat closed by {}", tx.operator),
                _ => write!(out, "Visitor rated the chat {}/5", tx.rng.range(1, 5)),
            },
        };
    }

    /// Expands a random template of `pool`.
    fn expand(&mut self, tx: &mut Tx, pool: &[&'static str], pii: &str, out: &mut String) {
        use std::fmt::Write as _;
        let mut tpl = tx.rng.pick(pool);
        if tpl == tx.last_template {
            tpl = tx.rng.pick(pool);
        }
        tx.last_template = tpl;
        let mut rest = tpl;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            let key = &rest[open + 1..close];
            let rng = &mut tx.rng;
            let _ = match key {
                "pii" => write!(out, "{pii}"),
                "first" => write!(out, "{}", self.meta[tx.visitor].first),
                "op" => write!(out, "{}", tx.operator),
                "order" => write!(out, "{}", tx.order_no),
                "price" => write_price(rng, out),
                "date" => write_date(rng, tx.ts, out),
                "time" => {
                    let t = tx.ts.rem_euclid(DAY_MS) - rng.range(60_000, 3_600_000) as i64;
                    let t = t.rem_euclid(DAY_MS);
                    write!(out, "{:02}:{:02}", t / 3_600_000, t / 60_000 % 60)
                }
                "tracking" => write_tracking(rng, out),
                "version" => match rng.below(3) {
                    0 => write!(
                        out,
                        "{}.{}.{}",
                        rng.range(1, 12),
                        rng.below(20),
                        rng.below(40)
                    ),
                    1 => write!(out, "v{}.{}", rng.range(1, 12), rng.below(20)),
                    _ => write!(
                        out,
                        "{}.{}.{}-beta",
                        rng.range(1, 6),
                        rng.below(10),
                        rng.range(1, 9)
                    ),
                },
                "last4" => write!(out, "{:04}", rng.below(10_000)),
                "err" => match rng.below(3) {
                    0 => write!(out, "E-{}", rng.range(1000, 9999)),
                    1 => write!(out, "HTTP {}", rng.pick(&[500, 502, 503, 429, 403])),
                    _ => write!(out, "0x{:08X}", rng.next_u64() as u32),
                },
                "product" => write!(out, "{}", rng.pick(PRODUCTS)),
                "country" => write!(out, "{}", rng.pick(COUNTRIES)),
                "n" => write!(out, "{}", rng.range(2, 15)),
                other => write!(out, "{{{other}}}"),
            };
            rest = rest.get(close + 1..).unwrap_or("");
        }
        out.push_str(rest);
    }

    fn form(&mut self, tx: &mut Tx, offline: bool, line: &mut Vec<u8>) {
        let v = tx.visitor;
        let mut fields: Vec<(&str, String)> = Vec::with_capacity(6);
        let name = if tx.rng.chance(0.15) {
            self.meta[v].first.to_string()
        } else {
            self.visitors[v].name.clone()
        };
        fields.push(("name", name));
        let email = if tx.rng.chance(0.1) {
            self.other_pii(tx, FP_EMAIL)
        } else {
            tx.shown_email.clone()
        };
        self.record_typed(v, &email);
        fields.push(("email", email));
        if tx.rng.chance(if offline { 0.3 } else { 0.5 }) {
            let phone = match self.visitors[v].phone.clone() {
                Some(p) => p,
                None => self.other_pii(tx, FP_PHONE),
            };
            self.record_typed(v, &phone);
            fields.push(("phone", phone));
        }
        if offline || tx.rng.chance(0.4) {
            fields.push(("order_number", tx.order_no.clone()));
        }
        if offline {
            let mut msg = String::new();
            self.expand(tx, OPENINGS[tx.topic], "", &mut msg);
            fields.push(("message", msg));
        } else {
            fields.push(("topic", TOPICS[tx.topic].to_string()));
        }
        if tx.rng.chance(0.3) {
            let lang = LOCALES[self.meta[v].locale as usize].lang;
            fields.push(("preferred_language", lang.to_string()));
        }
        if tx.rng.chance(0.2) {
            fields.push((
                "customer_number",
                format!("C-{}", digits_str(&mut tx.rng, 7)),
            ));
        }
        line.push(b'{');
        for (i, (k, val)) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            push_json_str(line, k);
            line.push(b':');
            push_json_str(line, val);
        }
        line.push(b'}');
    }

    fn file(&mut self, tx: &mut Tx, line: &mut Vec<u8>) -> io::Result<()> {
        let rng = &mut tx.rng;
        let size = rng.log_uniform(self.cfg.file_size.0, self.cfg.file_size.1);
        let size = size.clamp(self.cfg.file_size.0, self.cfg.file_size.1);
        let digits = tx.order_no.rsplit('-').next().unwrap_or("1").to_string();
        let (name, mime, magic): (String, &str, &[u8]) = match rng.below(3) {
            0 => {
                let name = match rng.below(4) {
                    0 => format!("invoice_{digits}.pdf"),
                    1 => format!(
                        "receipt-{}.pdf",
                        date_iso(tx.ts - rng.below(30) as i64 * DAY_MS)
                    ),
                    2 => "contrat signé.pdf".to_string(),
                    _ => format!("Scan_{}.pdf", rng.range(1, 999)),
                };
                (name, "application/pdf", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")
            }
            1 => {
                let name = match rng.below(3) {
                    0 => format!(
                        "Screenshot {} at 10.{:02}.{:02}.png",
                        date_iso(tx.ts),
                        rng.below(60),
                        rng.below(60)
                    ),
                    1 => format!("IMG_{}.png", digits_str(rng, 4)),
                    _ => "damaged_box.png".to_string(),
                };
                (name, "image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
            }
            _ => {
                let name = match rng.below(3) {
                    0 => "error_log.txt".to_string(),
                    1 => "console output.txt".to_string(),
                    _ => "notes.txt".to_string(),
                };
                (name, "text/plain", b"")
            }
        };
        self.file.clear();
        self.file.resize(size, 0);
        if mime == "text/plain" {
            fill_text(rng, &mut self.file);
        } else {
            rng.fill(&mut self.file);
            let n = magic.len().min(size);
            self.file[..n].copy_from_slice(&magic[..n]);
        }
        line.extend_from_slice(b"{\"name\":");
        push_json_str(line, &name);
        line.extend_from_slice(b",\"mime\":");
        push_json_str(line, mime);
        line.extend_from_slice(b",\"data\":\"");
        let start = line.len();
        let len = base64::encoded_len(size, true)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        line.resize(start + len, 0);
        base64::engine::general_purpose::STANDARD
            .encode_slice(&self.file, &mut line[start..])
            .map_err(io::Error::other)?;
        line.extend_from_slice(b"\"}");
        Ok(())
    }
}

/// Ends a sentence before another is appended.
fn sentence_break(out: &mut String) {
    if out.ends_with(char::is_alphanumeric) {
        out.push('.');
    }
    if !out.is_empty() {
        out.push(' ');
    }
}

fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    // Writing JSON for a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

fn order_number(rng: &mut Rng, ts: i64) -> String {
    let (y, _, _) = civil_from_days(ts.div_euclid(DAY_MS));
    format!("#A-{y}-{}", rng.range(100_000, 999_999))
}

fn date_iso(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

fn write_date(rng: &mut Rng, ts: i64, out: &mut String) -> std::fmt::Result {
    use std::fmt::Write as _;
    #[rustfmt::skip]
    const MONTHS: [&str; 12] = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ];
    let day = ts.div_euclid(DAY_MS) + rng.range(0, 40) as i64 - 30;
    let (y, m, d) = civil_from_days(day);
    match rng.below(4) {
        0 => write!(out, "{y:04}-{m:02}-{d:02}"),
        1 => write!(out, "{d:02}/{m:02}/{y}"),
        2 => write!(out, "{d:02}.{m:02}.{y}"),
        _ => write!(out, "{} {d}", MONTHS[m as usize - 1]),
    }
}

fn write_price(rng: &mut Rng, out: &mut String) -> std::fmt::Result {
    use std::fmt::Write as _;
    let units = rng.log_uniform(5, 2500);
    let cents = rng.pick(&[0u64, 50, 90, 95, 99]);
    match rng.below(6) {
        0 => write!(out, "€{units}.{cents:02}"),
        1 => write!(out, "${units}.{cents:02}"),
        2 => write!(out, "£{units}.{cents:02}"),
        3 => write!(out, "{units},{cents:02} €"),
        4 => write!(out, "R$ {units},{cents:02}"),
        _ => write!(out, "₹{units}"),
    }
}

fn write_tracking(rng: &mut Rng, out: &mut String) -> std::fmt::Result {
    use std::fmt::Write as _;
    match rng.below(3) {
        0 => write!(out, "1Z{}AA{}", digits_str(rng, 3), digits_str(rng, 10)),
        1 => write!(out, "JD{}", digits_str(rng, 18)),
        _ => write!(out, "LX{}DE", digits_str(rng, 9)),
    }
}

/// Plain text for `.txt` uploads: log-like words, no personal data.
fn fill_text(rng: &mut Rng, buf: &mut [u8]) {
    #[rustfmt::skip]
    const WORDS: &[&[u8]] = &[
        b"INFO", b"WARN", b"ERROR", b"request", b"timeout", b"retry", b"checkout", b"session",
        b"expired", b"status", b"200", b"502", b"cart", b"payment", b"declined", b"ok", b"user",
        b"agent", b"loaded", b"in", b"ms",
    ];
    let mut i = 0;
    let mut col = 0;
    while i < buf.len() {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        for &b in w {
            if i == buf.len() {
                return;
            }
            buf[i] = b;
            i += 1;
        }
        col += w.len() + 1;
        if i < buf.len() {
            buf[i] = if col > 60 { b'\n' } else { b' ' };
            if col > 60 {
                col = 0;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashMap;

    fn small(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            visitors: 60,
            file_probability: 0.3,
            file_size: (10, 4096),
            ..WorkloadConfig::default()
        }
    }

    fn run(cfg: &WorkloadConfig) -> (Vec<u8>, WorkloadSummary) {
        let mut out = Vec::new();
        let s = generate(cfg, &mut out).expect("generate");
        (out, s)
    }

    /// The support-desk profile: uploads of 50–500 KB carry most of the
    /// bytes, some texts run long, and the lines still follow the contract.
    #[test]
    fn support_desk_profile_has_large_uploads_and_long_texts() {
        let cfg = WorkloadConfig::support_desk(5, 150);
        let (out, summary) = run(&cfg);
        let text = std::str::from_utf8(&out).expect("utf-8");
        let (mut file_bytes, mut files, mut long_texts) = (0usize, 0usize, 0usize);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            match v["kind"].as_str() {
                Some("file") => {
                    files += 1;
                    file_bytes += line.len();
                    let data = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        v["file"]["data"].as_str().expect("data"),
                    )
                    .expect("base64");
                    assert!((50_000..=500_000).contains(&data.len()), "{}", data.len());
                }
                Some("text") if v["text"].as_str().is_some_and(|t| t.len() >= 300) => {
                    long_texts += 1;
                }
                _ => {}
            }
        }
        assert!(
            files > 0 && long_texts > 0,
            "{files} files, {long_texts} long texts"
        );
        assert!(
            file_bytes * 2 > out.len(),
            "uploads carry most bytes: {file_bytes} of {}",
            out.len()
        );
        assert_eq!(summary.lines as usize, text.lines().count());
        // (That the default profile draws nothing for long texts is checked
        // by `checked_in_sample_is_current`: the sample is unchanged.)
    }

    #[test]
    fn deterministic() {
        let (a, sa) = run(&small(7));
        let (b, sb) = run(&small(7));
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = run(&small(8));
        assert_ne!(a, c);
    }

    #[test]
    fn prng_is_stable() {
        // Pins the output stream so a refactor cannot silently change workloads.
        let mut r = Rng::new(1);
        let v: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r2 = Rng::new(1);
        assert_eq!(v, (0..3).map(|_| r2.next_u64()).collect::<Vec<_>>());
        assert_ne!(v[0], v[1]);
        let mut below_median = 0;
        for _ in 0..10_000 {
            let x = r.log_uniform(1024, 1 << 20);
            assert!((1024..=1 << 20).contains(&x));
            below_median += usize::from(x < 32 * 1024);
            let y = r.range(3, 5);
            assert!((3..=5).contains(&y));
        }
        // Log-uniform: half the sizes lie below the geometric mean.
        assert!((4_700..5_300).contains(&below_median), "{below_median}");
        for (lo, hi) in [(0, 0), (1, 1), (2047, 2048), (5, 2500), (100, 100)] {
            let x = r.log_uniform(lo, hi);
            assert!(x >= lo.max(1) && x <= hi.max(lo.max(1)), "{lo} {hi} {x}");
        }
    }

    #[test]
    fn timestamps_format() {
        let mut b = Vec::new();
        push_ts(&mut b, DEFAULT_START_UNIX_MS + 123);
        assert_eq!(b, b"2024-01-01T00:00:00.123Z");
        b.clear();
        push_ts(&mut b, 1_714_644_903_120);
        assert_eq!(b, b"2024-05-02T10:15:03.120Z");
        b.clear();
        push_ts(&mut b, 951_782_400_000); // leap day
        assert_eq!(b, b"2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn ipv6_form() {
        let mut r = Rng::new(3);
        for _ in 0..500 {
            let s = random_ipv6(&mut r);
            let a: std::net::Ipv6Addr = s.parse().expect("valid IPv6");
            assert_eq!(a.to_string(), s, "canonical form");
            let v4 = random_ipv4(&mut r);
            assert!(v4.parse::<std::net::Ipv4Addr>().is_ok());
        }
    }

    fn is_ts(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 24
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[23] == b'Z'
            && b.iter()
                .enumerate()
                .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
    }

    /// Email, `+` phone and IP strings in `text`, found the simple way.
    fn scan_pii(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for tok in text.split_whitespace() {
            let t = tok.trim_matches(|c: char| ".,;:!?()'\"".contains(c));
            if t.contains('@') || t.parse::<std::net::IpAddr>().is_ok() {
                found.push(t.to_string());
            }
        }
        let b = text.as_bytes();
        for (i, _) in text.match_indices('+') {
            if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                let end = text[i + 1..]
                    .find(|c: char| !(c.is_ascii_digit() || c == ' ' || c == '-'))
                    .map_or(text.len(), |e| i + 1 + e);
                found.push(text[i..end].trim_end_matches([' ', '-']).to_string());
            }
        }
        found
    }

    #[test]
    fn lines_follow_the_contract_and_truth_matches() {
        let cfg = small(42);
        let (out, summary) = run(&cfg);
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert_eq!(summary.bytes, out.len() as u64);
        assert_eq!(summary.lines, text.lines().count() as u64);
        let by_email: HashMap<String, usize> = summary
            .visitors
            .iter()
            .enumerate()
            .map(|(i, v)| (v.email.clone(), i))
            .collect();
        assert_eq!(by_email.len(), summary.visitors.len(), "emails unique");
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut visitor_obj: HashMap<String, Value> = HashMap::new();
        let mut last_ts: HashMap<String, String> = HashMap::new();
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut typed: Vec<Vec<String>> = vec![Vec::new(); summary.visitors.len()];
        let mut prev_ts = String::new();
        let (mut forms, mut consents, mut files) = (0, 0, 0);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("line parses");
            let o = v.as_object().expect("object");
            for k in o.keys() {
                assert!(
                    [
                        "transcript",
                        "ts",
                        "from",
                        "visitor",
                        "kind",
                        "text",
                        "form",
                        "file",
                        "consent"
                    ]
                    .contains(&k.as_str()),
                    "unexpected field {k}"
                );
            }
            let t = o["transcript"].as_str().expect("transcript").to_string();
            let ts = o["ts"].as_str().expect("ts").to_string();
            assert!(is_ts(&ts), "{ts}");
            assert!(ts >= prev_ts, "global order");
            prev_ts = ts.clone();
            let from = o["from"].as_str().expect("from");
            assert!(["visitor", "operator", "bot", "system"].contains(&from));
            *counts.entry(t.clone()).or_default() += 1;
            match last_ts.insert(t.clone(), ts.clone()) {
                None => {
                    let vis = o.get("visitor").expect("first line has visitor");
                    let email = vis["email"].as_str().expect("email").to_ascii_lowercase();
                    let idx = by_email[&email];
                    owner.insert(t.clone(), idx);
                    visitor_obj.insert(t.clone(), vis.clone());
                    let truth = &summary.visitors[idx];
                    assert_eq!(vis["name"], truth.name.as_str());
                    assert_eq!(
                        vis.get("phone").and_then(Value::as_str),
                        truth.phone.as_deref()
                    );
                    assert_eq!(
                        vis.get("id").and_then(Value::as_str),
                        truth.internal_id.as_deref()
                    );
                    assert_eq!(vis.get("ip").and_then(Value::as_str), truth.ip.as_deref());
                    for k in vis.as_object().expect("visitor object").keys() {
                        assert!(["email", "name", "phone", "id", "ip"].contains(&k.as_str()));
                    }
                }
                Some(prev) => {
                    assert!(prev <= ts, "ts non-decreasing in {t}");
                    if let Some(vis) = o.get("visitor") {
                        assert_eq!(vis, &visitor_obj[&t], "identical visitor in {t}");
                        assert_eq!(from, "visitor");
                    }
                }
            }
            let idx = owner[&t];
            let kind = o["kind"].as_str().expect("kind");
            let mut pii = Vec::new();
            match kind {
                "text" => {
                    let body = o["text"].as_str().expect("text");
                    assert!(!body.is_empty());
                    pii = scan_pii(body);
                }
                "form" => {
                    forms += 1;
                    assert_eq!(from, "visitor");
                    for (k, val) in o["form"].as_object().expect("form object") {
                        let val = val.as_str().expect("form values are strings");
                        if k == "email" || k == "phone" {
                            pii.push(val.to_string());
                        } else {
                            assert!(scan_pii(val).is_empty(), "{k}: {val}");
                        }
                    }
                }
                "consent" => {
                    consents += 1;
                    let c = o["consent"].as_object().expect("consent object");
                    assert!(c["granted"].is_boolean());
                    assert!(c["prompt"].is_string());
                    assert_eq!(c.len(), 2);
                }
                "file" => {
                    files += 1;
                    let f = o["file"].as_object().expect("file object");
                    assert_eq!(f.len(), 3);
                    assert!(f["name"].is_string() && f["mime"].is_string());
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(f["data"].as_str().expect("data"))
                        .expect("standard padded base64");
                    assert!((cfg.file_size.0..=cfg.file_size.1).contains(&data.len()));
                }
                other => panic!("unknown kind {other}"),
            }
            assert!(o.contains_key(kind), "body for {kind}");
            if from != "visitor" {
                assert!(pii.is_empty(), "PII in {from} line: {pii:?}");
            }
            let truth = &summary.visitors[idx];
            for p in pii {
                let own = p.eq_ignore_ascii_case(&truth.email)
                    || Some(&p) == truth.phone.as_ref()
                    || Some(&p) == truth.ip.as_ref();
                assert!(
                    own || truth.typed_pii.contains(&p),
                    "{p} not in truth of {t}"
                );
                if !typed[idx].contains(&p) {
                    typed[idx].push(p);
                }
            }
        }
        // typed_pii lists exactly what was typed (own data only if typed).
        for (i, v) in summary.visitors.iter().enumerate() {
            let mut a = v.typed_pii.clone();
            let mut b = typed[i].clone();
            a.sort();
            b.sort();
            assert_eq!(a, b, "typed_pii of {}", v.email);
            for t in &v.transcripts {
                assert_eq!(owner[t], i, "{t} belongs to {}", v.email);
            }
            let n = v.transcripts.len() as u32;
            assert!((cfg.transcripts_per_visitor.0..=cfg.transcripts_per_visitor.1).contains(&n));
        }
        assert_eq!(owner.len() as u64, summary.transcripts);
        let listed: usize = summary.visitors.iter().map(|v| v.transcripts.len()).sum();
        assert_eq!(listed, owner.len());
        for (t, n) in counts {
            assert!(
                (cfg.messages_per_transcript.0..=cfg.messages_per_transcript.1).contains(&n),
                "{t} has {n} lines"
            );
        }
        assert!(forms > 0 && consents > 0 && files > 0);
        assert!(summary.visitors.iter().any(|v| !v.typed_pii.is_empty()));
        assert!(summary.visitors.iter().any(|v| v.transcripts.len() > 1));
    }

    #[test]
    fn identifiers_unique() {
        let (_, s) = run(&WorkloadConfig {
            visitors: 3000,
            transcripts_per_visitor: (1, 1),
            messages_per_transcript: (1, 1),
            ..small(5)
        });
        let mut seen = HashSet::new();
        for v in &s.visitors {
            for x in [
                Some(&v.email),
                v.phone.as_ref(),
                v.internal_id.as_ref(),
                v.ip.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(seen.insert(x.to_ascii_lowercase()), "duplicate {x}");
            }
        }
        let ids: HashSet<_> = s
            .visitors
            .iter()
            .flat_map(|v| v.transcripts.clone())
            .collect();
        assert_eq!(ids.len(), 3000);
    }

    /// examples/sample.jsonl is what this generator writes for
    /// `gen_workload --seed 1 --visitors 12 --files 0.2 --file-size 256 2048`.
    #[test]
    fn checked_in_sample_is_current() {
        let cfg = WorkloadConfig {
            seed: 1,
            visitors: 12,
            file_probability: 0.2,
            file_size: (256, 2048),
            ..WorkloadConfig::default()
        };
        let (out, _) = run(&cfg);
        let sample = include_str!("../../../examples/sample.jsonl");
        assert!(
            out == sample.as_bytes(),
            "regenerate examples/sample.jsonl: cargo run --release --example gen_workload -- \
             --seed 1 --visitors 12 --files 0.2 --file-size 256 2048 > examples/sample.jsonl"
        );
    }

    #[test]
    fn bad_config_is_refused() {
        let cfg = WorkloadConfig {
            messages_per_transcript: (5, 4),
            ..WorkloadConfig::default()
        };
        assert!(generate(&cfg, Vec::new()).is_err());
        let empty = WorkloadConfig {
            visitors: 0,
            ..WorkloadConfig::default()
        };
        let (out, s) = run(&empty);
        assert!(out.is_empty() && s.lines == 0);
    }
}
