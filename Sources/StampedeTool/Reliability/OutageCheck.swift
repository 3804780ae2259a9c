import EmbeddedRedis
import Foundation
import StampedeRedis

/// The outage check's coordinator: starts the reader processes against a throwaway Redis,
/// kills the server after a second, restarts it on the same port after the outage, lets the
/// readers go on a while, and gathers when the origin was called.
struct OutageCheck {
    let processes: Int
    let tasks: Int
    let keys: Int
    let outageSeconds: Double
    let loadMs: Int
    let seed: UInt64
    let namespace: String

    /// How long the readers run before the outage (the cache filled and serving from
    /// Redis) and after it (Redis found again).
    static let before = Duration.seconds(1)
    static let after = Duration.milliseconds(1500)

    func run(on server: RedisServer) async throws -> OutageResult {
        let plannedMs = Int((Self.before + .milliseconds(Int(outageSeconds * 1000)) + Self.after).inMilliseconds)
        let fleet = try WorkerFleet(environment: [StormWorker.urlVariable: server.url], (0..<processes).map { index in
            [
                "reliability-worker", "--check", ReliabilityCheck.outage.rawValue, "--namespace", namespace,
                "--keys", "\(keys)", "--tasks", "\(tasks)", "--load-ms", "\(loadMs)", "--duration-ms", "\(plannedMs)",
                "--seed", "\(seed)", "--index", "\(index)",
            ]
        }) { WorkerMessage<OutageReport>(line: $0) }
        defer { fleet.stop() }
        try await fleet.waitUntilReady(within: .seconds(60))

        let startAt = monotonicNanoseconds() + 100_000_000
        fleet.send(line: ReliabilityOrder.go(startAt: startAt).line)
        try await sleep(until: startAt + Int(Self.before.inMilliseconds) * 1_000_000)
        let downAt = monotonicNanoseconds()
        server.kill()
        try await sleep(until: downAt + Int(outageSeconds * 1e9))
        do {
            try await server.restart()
        } catch {
            throw ToolError("could not restart the throwaway redis-server after the outage: \(error)")
        }
        let upAt = monotonicNanoseconds()
        try await Task.sleep(for: Self.after)
        fleet.send(line: ReliabilityOrder.stop(downAt: downAt, upAt: upAt).line)

        let reports: [OutageReport] = try await fleet.results(within: .seconds(60))
        await fleet.finish()
        return OutageResult(check: self, outageNanoseconds: upAt - downAt, reports: reports)
    }

    private func sleep(until instant: Int) async throws {
        let wait = instant - monotonicNanoseconds()
        if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
    }
}
