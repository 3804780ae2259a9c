import Foundation

/// A storm's results as text: one line per finished run, a Markdown table per scenario.
enum StormTable {
    private struct Column {
        let header: String
        let value: (RunReport) -> Double
        let format: (Double) -> String

        init(_ header: String, count value: @escaping (RunReport) -> Int) {
            self.header = header
            self.value = { Double(value($0)) }
            format = { String(Int($0.rounded())) }
        }

        init(_ header: String, milliseconds value: @escaping (RunReport) -> Double) {
            self.header = header
            self.value = value
            format = StormTable.milliseconds
        }

        init(_ header: String, ratio value: @escaping (RunReport) -> Double) {
            self.header = header
            self.value = value
            format = { String(format: $0 >= 100 ? "%.0f" : "%.2f", $0) }
        }
    }

    static func milliseconds(_ value: Double) -> String {
        String(format: value < 1 ? "%.3f" : value < 10 ? "%.2f" : "%.1f", value)
    }

    static func summary(of report: RunReport, repeats: Int) -> String {
        var parts = ["\(report.requests) \(report.scenario == .lock ? "acquisitions" : "requests")"]
        switch report.scenario {
        case .lock:
            parts.append("\(report.violations ?? 0) violations")
            parts.append("hand-off p50 \(milliseconds(report.handoffMs?.p50 ?? 0)) ms")
        default:
            parts.append(String(format: "%d origin calls (%.1f per key)", report.originCalls, report.originCallsPerKey))
        }
        parts.append("p50 \(milliseconds(report.latencyMs.p50)) ms, p99 \(milliseconds(report.latencyMs.p99)) ms")
        if !report.scenario.isWave { parts.append("\(Int(report.opsPerSec))/s") }
        if report.errors + report.timeouts > 0 {
            parts.append("\(report.errors) errors, \(report.timeouts) timeouts" + (report.errorSamples.map { " (\($0.joined(separator: "; ")))" } ?? ""))
        }
        return "\(report.scenario.rawValue) / \(report.strategy.rawValue) (\(report.repeat)/\(repeats)): " + parts.joined(separator: ", ")
    }

    /// The scenario's table: one row per strategy, each figure the median over the repeats.
    static func render(scenario: Scenario, parameters: StormParameters, reports: [RunReport]) -> String {
        let columns = columns(for: scenario)
        let repeats = Set(reports.map(\.repeat)).count
        var lines = [title(scenario: scenario, parameters: parameters) + (repeats > 1 ? " (medians of \(repeats) runs)" : "")]
        lines.append("")
        lines.append("| strategy | " + columns.map(\.header).joined(separator: " | ") + " |")
        lines.append("|---|" + columns.map { _ in "---:|" }.joined())
        for strategy in Strategy.allCases {
            let runs = reports.filter { $0.strategy == strategy }
            guard !runs.isEmpty else { continue }
            let cells = columns.map { column in column.format(median(runs.map(column.value))) }
            lines.append("| \(strategy.rawValue) | " + cells.joined(separator: " | ") + " |")
        }
        if let perNode = nodeTable(reports: reports) { lines += ["", perNode] }
        return lines.joined(separator: "\n")
    }

    /// In a cluster: the commands each master ran and the `PUBLISH` messages sent over the
    /// cluster bus, per strategy (medians over the repeats).
    static func nodeTable(reports: [RunReport]) -> String? {
        let nodes = Set(reports.flatMap { $0.commandsPerNode.map { Array($0.keys) } ?? [] }).sorted()
        guard !nodes.isEmpty else { return nil }
        var lines = ["Commands per cluster master (the workers' bookkeeping included) and PUBLISH messages over the cluster bus", ""]
        lines.append("| strategy | " + nodes.joined(separator: " | ") + " | bus PUBLISH messages | per origin call |")
        lines.append("|---|" + String(repeating: "---:|", count: nodes.count + 2))
        for strategy in Strategy.allCases {
            let runs = reports.filter { $0.strategy == strategy && $0.commandsPerNode != nil }
            guard !runs.isEmpty else { continue }
            let counts = nodes.map { node in String(Int(median(runs.map { Double($0.commandsPerNode?[node] ?? 0) }).rounded())) }
            let bus = median(runs.map { Double($0.clusterBusPublishMessages ?? 0) })
            let perCall = median(runs.map { $0.originCalls == 0 ? 0 : Double($0.clusterBusPublishMessages ?? 0) / Double($0.originCalls) })
            lines.append("| \(strategy.rawValue) | " + counts.joined(separator: " | ") + " | \(Int(bus.rounded())) | " + String(format: "%.1f", perCall) + " |")
        }
        return lines.joined(separator: "\n")
    }

    static func title(scenario: Scenario, parameters: StormParameters) -> String {
        let keys = parameters.keys(for: scenario)
        let callers = "\(parameters.processes) processes x \(parameters.tasks) callers"
        switch scenario {
        case .miss: return "Miss storm: \(callers), \(keys) keys absent, origin \(parameters.loadMs) ms"
        case .stale: return "Stale storm: \(callers), \(keys) keys stale (stale-while-revalidate), origin \(parameters.loadMs) ms"
        case .hit: return "Hit storm: \(callers), \(keys) fresh keys, \(format(parameters.duration)) s"
        case .hotHit: return "Hot-key storm: \(callers), one fresh key, \(format(parameters.duration)) s"
        case .lock: return "Lock storm: \(callers) on one lock, held \(parameters.holdMs) ms, \(format(parameters.duration)) s"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }

    private static func columns(for scenario: Scenario) -> [Column] {
        let commandsPerRequest = Column("Redis commands per request", ratio: { $0.requests == 0 ? 0 : Double($0.redisCommands) / Double($0.requests) })
        switch scenario {
        case .miss, .stale:
            return [
                Column("requests", count: \.requests),
                Column("origin calls", count: \.originCalls),
                Column("per key", ratio: \.originCallsPerKey),
                Column("p50 ms", milliseconds: \.latencyMs.p50),
                Column("p99 ms", milliseconds: \.latencyMs.p99),
                Column("added p99 ms", milliseconds: \.addedLatencyMsP99),
                Column("blocked", count: \.blocked),
                Column("stale served", count: \.staleServed),
                Column("errors", count: \.errors),
                Column("timeouts", count: \.timeouts),
                Column("Redis commands", count: \.redisCommands),
                commandsPerRequest,
            ]
        case .hit, .hotHit:
            return [
                Column("requests", count: \.requests),
                Column("per second", count: { Int($0.opsPerSec) }),
                Column("origin calls", count: \.originCalls),
                Column("p50 ms", milliseconds: \.latencyMs.p50),
                Column("p99 ms", milliseconds: \.latencyMs.p99),
                Column("max ms", milliseconds: { $0.latencyMs.max ?? 0 }),
                Column("errors", count: \.errors),
                Column("timeouts", count: \.timeouts),
                Column("Redis commands", count: \.redisCommands),
                commandsPerRequest,
            ]
        case .lock:
            return [
                Column("acquisitions", count: \.requests),
                Column("per second", count: { Int($0.opsPerSec) }),
                Column("wait p50 ms", milliseconds: \.latencyMs.p50),
                Column("wait p99 ms", milliseconds: \.latencyMs.p99),
                Column("hand-off p50 ms", milliseconds: { $0.handoffMs?.p50 ?? 0 }),
                Column("hand-off p99 ms", milliseconds: { $0.handoffMs?.p99 ?? 0 }),
                Column("violations", count: { $0.violations ?? 0 }),
                Column("errors", count: \.errors),
                Column("timeouts", count: \.timeouts),
                Column("Redis commands per acquisition", ratio: { $0.requests == 0 ? 0 : Double($0.redisCommands) / Double($0.requests) }),
            ]
        }
    }
}
