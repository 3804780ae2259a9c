import EmbeddedRedis
import Foundation
@_spi(Benchmarks) import Stampede
import StampedeRedis

/// The coordinator of the outage and failover checks: starts the reader processes against a
/// throwaway Redis, after a second kills the server (and restarts it on the same port after
/// the outage) or kills a cluster master (and waits until its replica serves its slots), lets
/// the readers go on a while, and gathers what they saw.
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

    /// The outage check: `server` killed, and restarted after ``outageSeconds``.
    func run(on server: RedisServer) async throws -> OutageResult {
        try await run(.outage, url: server.url) {
            try await Task.sleep(for: .milliseconds(Int(outageSeconds * 1000)))
            do {
                try await server.restart()
            } catch {
                throw ToolError("could not restart the throwaway redis-server after the outage: \(error)")
            }
        } fault: {
            server.kill()
        }
    }

    /// The failover check: the master of the first key's slot killed; over when the cluster
    /// serves every slot again without it (its replica promoted).
    func run(onFailoverOf cluster: RedisCluster, url: String) async throws -> OutageResult {
        let client = try RedisClient(configuration: try RedisConfiguration(url: url))
        defer { Task { await client.shutdown() } }
        let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
        let slot = HashSlot(key: CacheFormat.Keys(namespace: namespace, key: ReliabilityKeys.key(0)).entry)
        guard let victim = topology.master(for: slot), let node = cluster.nodes.first(where: { $0.port == victim.port }) else {
            throw ToolError("the cluster has no master for slot \(slot)")
        }
        return try await run(.failover, url: url) {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let shards = try? await client.send("CLUSTER", "SHARDS"), let now = try? ClusterTopology(shardsReply: shards),
                   now.coversEverySlot, !now.masters.contains(victim) {
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ToolError("the killed master's replica did not take over within 30 s")
        } fault: {
            node.kill()
        }
    }

    /// The Sentinel check: the master of a Sentinel set killed; over when the Sentinels name
    /// another.
    func run(onFailoverOf set: RedisSentinelSet) async throws -> OutageResult {
        guard let oldPort = try set.masterPort(), let master = set.server(at: oldPort) else {
            throw ToolError("the Sentinels named no master")
        }
        return try await run(.sentinelFailover, url: set.url) {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let port = try? set.masterPort(), port != oldPort { return }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ToolError("the Sentinels named no new master within 30 s")
        } fault: {
            master.kill()
        }
    }

    /// Starts the readers, runs `fault` after ``before``, then `recovery` until the fault is
    /// over; the readers go on for ``after`` and report.
    private func run(
        _ check: ReliabilityCheck, url: String, recovery: () async throws -> Void, fault: () -> Void
    ) async throws -> OutageResult {
        let plannedMs = Int((Self.before + .milliseconds(Int(outageSeconds * 1000)) + Self.after).inMilliseconds)
        let fleet = try WorkerFleet(environment: [StormWorker.urlVariable: url], (0..<processes).map { index in
            [
                "reliability-worker", "--check", check.rawValue, "--namespace", namespace,
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
        fault()
        try await recovery()
        let upAt = monotonicNanoseconds()
        try await Task.sleep(for: Self.after)
        fleet.send(line: ReliabilityOrder.stop(downAt: downAt, upAt: upAt).line)

        let reports: [OutageReport] = try await fleet.results(within: .seconds(60))
        await fleet.finish()
        return OutageResult(check: self, fault: check, outageNanoseconds: upAt - downAt, reports: reports)
    }

    private func sleep(until instant: Int) async throws {
        let wait = instant - monotonicNanoseconds()
        if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
    }
}
