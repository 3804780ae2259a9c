import Foundation

/// The outage or failover check's figures over every worker, as the table and `--json`
/// show them.
struct OutageResult: Encodable, Sendable {
    /// `outage` (a server killed and restarted) or `failover` (a cluster master killed).
    var fault: ReliabilityCheck
    var processes: Int
    var tasks: Int
    var keys: Int
    /// From the kill until the restarted server accepted connections, or until the cluster
    /// served every slot again.
    var outageS: Double
    var timeToLiveS: Double
    var loadMs: Int
    var originCallsDuring: Int
    /// One origin call per process and key per time to live while Redis is down: what a
    /// cache that keeps values it loaded without Redis for their time to live would make.
    var bound: Int
    var originCallsBefore: Int
    var originCallsAfter: Int
    var reads: Int
    var errors: Int
    var errorSamples: [String]
    var longestReadMs: Double

    enum CodingKeys: String, CodingKey {
        case fault, longestReadMs = "longest_read_ms"
        case processes, tasks, keys, outageS = "outage_s", timeToLiveS = "time_to_live_s", loadMs = "load_ms"
        case originCallsDuring = "origin_calls_during", bound, originCallsBefore = "origin_calls_before"
        case originCallsAfter = "origin_calls_after", reads, errors, errorSamples = "error_samples"
    }

    init(check: OutageCheck, fault: ReliabilityCheck, outageNanoseconds: Int, reports: [OutageReport]) {
        self.fault = fault
        processes = check.processes
        tasks = check.tasks
        keys = check.keys
        outageS = Double(outageNanoseconds) / 1e9
        timeToLiveS = OutageReaders.policy.timeToLive.inSeconds
        loadMs = check.loadMs
        bound = check.processes * check.keys * Int((outageS / timeToLiveS).rounded(.up))
        originCallsBefore = reports.reduce(0) { $0 + $1.originCallsBefore }
        originCallsDuring = reports.reduce(0) { $0 + $1.originCallsDuring }
        originCallsAfter = reports.reduce(0) { $0 + $1.originCallsAfter }
        reads = reports.reduce(0) { $0 + $1.reads }
        var errors = ErrorTally()
        for report in reports { errors.merge(report.errors) }
        self.errors = errors.count
        errorSamples = errors.samples
        longestReadMs = Double(reports.map(\.longestReadNs).max() ?? 0) / 1e6
    }

    var table: String {
        let window = fault == .outage ? "outage" : "failover"
        let span = switch fault {
        case .failover: "failover (master killed until its replica serves its slots)"
        case .sentinelFailover: "failover (master killed until the Sentinels name its replica)"
        default: "outage"
        }
        var rows = [
            ("processes x tasks", "\(processes) x \(tasks)"),
            ("keys", "\(keys)"),
            (span, String(format: "%.2f s", outageS)),
            ("origin calls during the \(window)", "\(originCallsDuring)"),
            ("bound: one per process and key per time to live", "\(bound)"),
            ("origin calls before / after", "\(originCallsBefore) / \(originCallsAfter)"),
            ("reads", "\(reads)"),
            ("longest read", String(format: "%.0f ms", longestReadMs)),
            ("read errors", "\(errors)"),
        ]
        if !errorSamples.isEmpty { rows.append(("errors, for example", errorSamples.joined(separator: "; "))) }
        let what = switch fault {
        case .failover: "Failover check: a master of a 3-master cluster (a replica each) killed"
        case .sentinelFailover: "Sentinel failover check: the master of a Sentinel set (one replica, 3 Sentinels) killed"
        default: "Outage check: Redis killed and restarted"
        }
        return ReliabilityTable.render(
            title: String(format: "%@, time to live %g s, origin %d ms, load locally without Redis", what, timeToLiveS, loadMs),
            rows: rows,
            footnote: String(format: "Bound: %d processes x %d keys x ceil(%.2f s / %g s).", processes, keys, outageS, timeToLiveS))
    }
}
