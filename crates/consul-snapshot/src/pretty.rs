//! The human layout of `consul snapshot inspect` (spec §7.2–7.3; Consul's
//! `command/snapshot/inspect/formatter.go`): Go `text/tabwriter` alignment and `ByteSize`.

use super::stats::{InspectReport, TypeStat};

/// Go tabwriter settings Consul uses: minimum cell width 8, padding 6, pad with spaces.
const MIN_WIDTH: usize = 8;
const PADDING: usize = 6;

/// Consul's `ByteSize`: largest binary unit not above `n`, one decimal, `.0` dropped.
///
/// ```
/// use consul_snapshot::pretty::byte_size;
/// assert_eq!(byte_size(17228), "16.8KB");
/// assert_eq!(byte_size(1024), "1KB");
/// assert_eq!(byte_size(0), "0");
/// ```
pub fn byte_size(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
        (1, "B"),
    ];
    if n == 0 {
        return "0".into();
    }
    let (unit, name) = UNITS
        .iter()
        .copied()
        .find(|(u, _)| n >= *u)
        .unwrap_or((1, "B"));
    let s = format!("{:.1}", n as f64 / unit as f64);
    format!("{}{name}", s.strip_suffix(".0").unwrap_or(&s))
}

/// The pretty report, without the newline the CLI prints after it. Bytes, because KV prefixes
/// are printed as stored (Consul writes Go strings, which may hold any bytes).
pub fn render(report: &InspectReport) -> Vec<u8> {
    let m = &report.meta;
    let mut t: Vec<u8> = format!(
        " ID\t{}\n Size\t{}\n Index\t{}\n Term\t{}\n Version\t{}\n\n Type\tCount\tSize\n ----\t----\t----",
        m.id, m.size, m.index, m.term, m.version
    )
    .into_bytes();
    table(&mut t, &report.stats, report.total_size);
    if let Some(kv) = &report.stats_kv {
        t.extend_from_slice(b"\n\n Key Name\tCount\tSize\n ----\t----\t----");
        table(&mut t, kv, report.total_size_kv);
    }
    tabwriter(&t, MIN_WIDTH, PADDING)
}

fn table(t: &mut Vec<u8>, rows: &[TypeStat], total: u64) {
    for s in rows {
        t.extend_from_slice(b"\n ");
        t.extend_from_slice(&s.name);
        t.extend_from_slice(format!("\t{}\t{}", s.count, byte_size(s.sum)).as_bytes());
    }
    t.extend_from_slice(format!("\n ----\t----\t----\n Total\t\t{}", byte_size(total)).as_bytes());
}

/// Go's `text/tabwriter` (no flags) over `text`: lines split on `\n`, cells on `\t`; a column
/// block is a run of consecutive lines that have a cell in that column (the last cell of a line
/// is never in a column); each cell of a block is padded to the block's widest cell plus
/// `padding`, at least `min_width`. Widths count UTF-8 runes, invalid bytes one each.
pub fn tabwriter(text: &[u8], min_width: usize, padding: usize) -> Vec<u8> {
    let lines: Vec<Vec<&[u8]>> = text
        .split(|&c| c == b'\n')
        .map(|l| l.split(|&c| c == b'\t').collect())
        .collect();
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        min_width,
        padding,
        &mut out,
    );
    out
}

fn format_block(
    lines: &[Vec<&[u8]>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    min_width: usize,
    padding: usize,
    out: &mut Vec<u8>,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(runes(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, min_width, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&[u8]>], from: usize, to: usize, widths: &[usize], out: &mut Vec<u8>) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.extend_from_slice(cell);
            if let Some(&w) = widths.get(j) {
                out.resize(out.len() + w.saturating_sub(runes(cell)), b' ');
            }
        }
        if i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
}

/// Go's `utf8.RuneCount`: each invalid byte counts as one rune.
fn runes(b: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => return n + s.chars().count(),
            Err(e) => {
                let valid = e.valid_up_to();
                n += std::str::from_utf8(&rest[..valid]).map_or(0, |s| s.chars().count()) + 1;
                rest = &rest[valid + 1..];
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MetaInfo;

    #[test]
    fn byte_size_examples_from_spec() {
        for (n, want) in [
            (0, "0"),
            (12, "12B"),
            (199, "199B"),
            (1024, "1KB"),
            (1638, "1.6KB"),
            (17228, "16.8KB"),
            (4_625_420_898, "4.3GB"),
            (1280, "1.2KB"), // exact tie: Go's FormatFloat rounds half to even
        ] {
            assert_eq!(byte_size(n), want, "{n}");
        }
    }

    fn row(name: &str, sum: u64, count: u64) -> TypeStat {
        TypeStat {
            name: name.as_bytes().to_vec(),
            sum,
            count,
        }
    }

    /// The upstream golden `TestSnapshotInspectKVDetailsDepthFilterCommand.golden` (spec §7.3).
    #[test]
    fn matches_upstream_golden_layout() {
        let golden = " ID           2-12426-1604593650375
 Size         17228
 Index        12426
 Term         2
 Version      1

 Type                       Count      Size
 ----                       ----       ----
 KVS                        27         12.3KB
 Register                   5          3.4KB
 Index                      11         285B
 Autopilot                  1          199B
 Session                    1          199B
 CoordinateBatchUpdate      1          166B
 Tombstone                  2          146B
 FederationState            1          139B
 ChunkingState              1          12B
 ----                       ----       ----
 Total                                 16.8KB

 Key Name                                                Count      Size
 ----                                                    ----       ----
 vault/logical/0989e79e-06cd-5374-c8c0-4c6d675bc1c9      3          1.8KB
 vault/logical/5c018b68-3573-41d3-0c33-04bce60cd6b0      1          210B
 ----                                                    ----       ----
 Total                                                              2KB";
        let report = InspectReport {
            meta: MetaInfo {
                id: "2-12426-1604593650375".into(),
                size: 17228,
                index: 12426,
                term: 2,
                version: 1,
            },
            stats: vec![
                row("KVS", 12595, 27),
                row("Register", 3482, 5),
                row("Index", 285, 11),
                row("Autopilot", 199, 1),
                row("Session", 199, 1),
                row("CoordinateBatchUpdate", 166, 1),
                row("Tombstone", 146, 2),
                row("FederationState", 139, 1),
                row("ChunkingState", 12, 1),
            ],
            stats_kv: Some(vec![
                row(
                    "vault/logical/0989e79e-06cd-5374-c8c0-4c6d675bc1c9",
                    1843,
                    3,
                ),
                row("vault/logical/5c018b68-3573-41d3-0c33-04bce60cd6b0", 210, 1),
            ]),
            total_size: 17228,
            total_size_kv: 2053,
        };
        assert_eq!(String::from_utf8(render(&report)).expect("utf8"), golden);
    }

    #[test]
    fn no_kv_table_without_kv_stats() {
        let report = InspectReport {
            meta: MetaInfo {
                id: "x".into(),
                size: 1,
                index: 1,
                term: 1,
                version: 1,
            },
            stats: vec![row("KVS", 10, 1)],
            stats_kv: None,
            total_size: 10,
            total_size_kv: 0,
        };
        let s = String::from_utf8(render(&report)).expect("utf8");
        assert!(s.ends_with(" Total                 10B"), "{s}");
        assert!(!s.contains("Key Name"));
    }

    #[test]
    fn invalid_utf8_counts_one_per_byte() {
        assert_eq!(runes(b"ab\xffc"), 4);
        assert_eq!(runes("é".as_bytes()), 1);
    }
}
