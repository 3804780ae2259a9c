import Foundation

/// The invalidation check's figures over every worker, as the table and `--json` show them.
struct InvalidationResult: Encodable, Sendable {
    struct Windows: Encodable, Sendable {
        var p50: Double
        var p99: Double
        var max: Double
    }

    var processes: Int
    var tasks: Int
    var keys: Int
    var nearCache: Bool
    var durationS: Double
    var loadMs: Int
    var writeIntervalMs: Int
    /// Invalidations that returned and were logged.
    var writes: Int
    var writeErrors: Int
    var reads: Int
    var readsAfterInvalidation: Int
    var staleReads: Int
    /// Stale reads, in percent of the reads that started after an invalidation (only
    /// those can be stale).
    var staleSharePercent: Double
    /// `nil` when no read was stale.
    var staleWindowMs: Windows?
    var readErrors: Int
    var readersStoppedEarly: Int
    var errorSamples: [String]

    enum CodingKeys: String, CodingKey {
        case processes, tasks, keys, nearCache = "near_cache", durationS = "duration_s", loadMs = "load_ms"
        case writeIntervalMs = "write_interval_ms", writes, writeErrors = "write_errors", reads
        case readsAfterInvalidation = "reads_after_invalidation", staleReads = "stale_reads"
        case staleSharePercent = "stale_share_percent", staleWindowMs = "stale_window_ms"
        case readErrors = "read_errors", readersStoppedEarly = "readers_stopped_early", errorSamples = "error_samples"
    }

    init(check: InvalidationCheck, writes: Int, writeErrors: ErrorTally, reports: [InvalidationReport]) {
        processes = check.processes
        tasks = check.tasks
        keys = check.keys
        nearCache = check.nearCache
        durationS = check.duration
        loadMs = check.loadMs
        writeIntervalMs = check.writeIntervalMs
        self.writes = writes
        self.writeErrors = writeErrors.count
        reads = reports.reduce(0) { $0 + $1.reads }
        readsAfterInvalidation = reports.reduce(0) { $0 + $1.readsAfterInvalidation }
        staleReads = reports.reduce(0) { $0 + $1.staleReads }
        staleSharePercent = readsAfterInvalidation == 0 ? 0 : 100 * Double(staleReads) / Double(readsAfterInvalidation)
        let windows = reports.map(\.staleWindows)
        if let p50 = StaleWindows.milliseconds(atQuantile: 0.5, of: windows),
           let p99 = StaleWindows.milliseconds(atQuantile: 0.99, of: windows),
           let max = StaleWindows.milliseconds(atQuantile: 1, of: windows) {
            staleWindowMs = Windows(p50: p50, p99: p99, max: max)
        }
        var errors = writeErrors
        for report in reports { errors.merge(report.errors) }
        readErrors = reports.reduce(0) { $0 + $1.errors.count }
        readersStoppedEarly = reports.reduce(0) { $0 + $1.readersStoppedEarly }
        errorSamples = errors.samples
    }

    var table: String {
        let windows = staleWindowMs.map { "\(StormTable.milliseconds($0.p50)) / \(StormTable.milliseconds($0.p99)) / \(StormTable.milliseconds($0.max)) ms" } ?? "-"
        var rows = [
            ("processes x tasks", "\(processes) x \(tasks)"),
            ("keys", "\(keys)"),
            ("near cache", nearCache ? "on" : "off"),
            ("writes (invalidations)", "\(writes)"),
            ("reads", "\(reads)"),
            ("reads that started after an invalidation", "\(readsAfterInvalidation)"),
            ("stale reads", String(format: "%d (%.3f%%)", staleReads, staleSharePercent)),
            ("stale window p50 / p99 / max", windows),
            ("read errors", "\(readErrors)"),
        ]
        if writeErrors > 0 { rows.append(("write errors", "\(writeErrors)")) }
        if readersStoppedEarly > 0 { rows.append(("readers stopped at the read limit", "\(readersStoppedEarly)")) }
        if !errorSamples.isEmpty { rows.append(("errors, for example", errorSamples.joined(separator: "; "))) }
        return ReliabilityTable.render(
            title: String(format: "Invalidation check: %@ s, a write every %d ms, origin %d ms", format(durationS), writeIntervalMs, loadMs),
            rows: rows,
            footnote: "Stale: a read that started after an invalidation of its key had returned and got an older version. Share: of the reads that started after an invalidation. Window: from the invalidation that superseded the value to the read's start.")
    }

    private func format(_ seconds: Double) -> String { seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds) }
}
