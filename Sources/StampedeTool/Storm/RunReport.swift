import Foundation

/// One (scenario, strategy, repeat) of a storm, as the table, the chart and `--json` show it.
struct RunReport: Encodable, Sendable {
    struct Percentiles: Codable, Sendable {
        var p50: Double
        var p90: Double?
        var p99: Double
        var max: Double?
    }

    var scenario: Scenario
    var strategy: Strategy
    var `repeat`: Int
    var processes: Int
    var tasks: Int
    var keys: Int
    var loadMs: Int
    var durationS: Double?
    var holdMs: Int?
    var seed: UInt64
    var requests: Int
    var originCalls: Int
    var originCallsPerKey: Double
    var latencyMs: Percentiles
    var addedLatencyMsP99: Double
    var blocked: Int
    var staleServed: Int
    var errors: Int
    var timeouts: Int
    var redisCommands: Int
    var clientCommands: Int
    var opsPerSec: Double
    var wallMs: Double
    var handoffMs: Percentiles?
    var violations: Int?
    var errorSamples: [String]?
    /// In a cluster: the commands each master ran (the workers' bookkeeping included).
    var commandsPerNode: [String: Int]?
    /// In a cluster: the `PUBLISH` messages the masters sent each other over the cluster bus.
    var clusterBusPublishMessages: Int?
    /// Every caller's latency, for the chart; not written to `--json`.
    var latency = LatencyHistogram()

    enum CodingKeys: String, CodingKey {
        case scenario, strategy, `repeat`, processes, tasks, keys
        case loadMs = "load_ms", durationS = "duration_s", holdMs = "hold_ms", seed
        case requests, originCalls = "origin_calls", originCallsPerKey = "origin_calls_per_key"
        case latencyMs = "latency_ms", addedLatencyMsP99 = "added_latency_ms_p99"
        case blocked, staleServed = "stale_served", errors, timeouts
        case redisCommands = "redis_commands", clientCommands = "client_commands"
        case opsPerSec = "ops_per_sec", wallMs = "wall_ms"
        case handoffMs = "handoff_ms", violations, errorSamples = "error_samples"
        case commandsPerNode = "commands_per_node", clusterBusPublishMessages = "cluster_bus_publish_messages"
    }

    /// The report of a run from its parameters, what its workers saw, and Redis's counts.
    init(parameters: StormParameters, scenario: Scenario, strategy: Strategy, repeat: Int,
         workers: [WorkerReport], originCalls: Int, redisCommands: Int) {
        var total = WorkerReport()
        for report in workers { total.merge(report) }
        let keys = parameters.keys(for: scenario)
        self.scenario = scenario
        self.strategy = strategy
        self.repeat = `repeat`
        processes = parameters.processes
        tasks = parameters.tasks
        self.keys = keys
        loadMs = parameters.loadMs
        durationS = scenario.isWave ? nil : parameters.duration
        holdMs = scenario == .lock ? parameters.holdMs : nil
        seed = parameters.seed
        requests = total.requests
        self.originCalls = originCalls
        originCallsPerKey = Double(originCalls) / Double(keys)
        latency = total.latency
        // Microseconds are as fine as a storm's figures go.
        func ms(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
        latencyMs = Percentiles(
            p50: ms(latency.milliseconds(atQuantile: 0.5)), p90: ms(latency.milliseconds(atQuantile: 0.9)),
            p99: ms(latency.milliseconds(atQuantile: 0.99)), max: ms(latency.milliseconds(atQuantile: 1)))
        addedLatencyMsP99 = scenario == .miss ? ms(max(0, latencyMs.p99 - Double(loadMs))) : latencyMs.p99
        // Waiting on the origin: with an origin that takes no time, nobody is.
        blocked = loadMs > 0 ? latency.count(above: Double(loadMs) / 2) : 0
        staleServed = total.staleServed
        errors = total.errors
        timeouts = total.timeouts
        self.redisCommands = redisCommands
        clientCommands = total.clientCommands
        wallMs = ms(total.wallMilliseconds)
        opsPerSec = total.wallMilliseconds > 0 ? (Double(requests) / (total.wallMilliseconds / 1000)).rounded() : 0
        if scenario == .lock {
            handoffMs = Percentiles(p50: ms(total.handoff.milliseconds(atQuantile: 0.5)), p99: ms(total.handoff.milliseconds(atQuantile: 0.99)))
            violations = total.violations
        }
        errorSamples = total.errorSamples.isEmpty ? nil : total.errorSamples
    }

    /// The report as one line of JSON.
    var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }
}
