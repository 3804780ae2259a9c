import ArgumentParser
import EmbeddedRedis
import Foundation
import StampedeRedis

/// Two reliability figures, measured with real processes: how often a read that starts
/// after an invalidation returned still gets the older value, and how often the origin is
/// called while Redis is down.
struct Reliability: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reliability",
        abstract: "Stale reads after invalidations, origin calls during a Redis outage, and what callers see during a cluster failover, across processes.",
        discussion: """
            invalidation: --processes worker processes of --tasks readers read --keys keys back to \
            back for --duration seconds, each read through StampedeCache (time to live 60 s) with a \
            loader that reads the key's origin version and takes --load-ms. A writer in this process \
            bumps a random key's origin version every --write-interval-ms, invalidates the key, and \
            logs when the invalidation returned. A read is stale when it started after an \
            invalidation of its key had returned and got an older version; its window is how long \
            after the invalidation that superseded its value it started. --near-cache puts a near \
            cache (200 ms) in front of Redis in the readers.

            outage: the same readers against a throwaway redis-server, time to live 1 s, loading \
            locally while Redis is unreachable, origin --outage-load-ms. After a second the server \
            is killed, after --outage-seconds restarted on the same port, and 1.5 s later the \
            readers stop. The origin calls during the outage are set beside one per process and key \
            per time to live.

            failover: the same readers against a throwaway Redis Cluster of 3 masters with a \
            replica each. After a second the master of the first key's slot is killed (kill -9); \
            the failover lasts until the cluster serves every slot again without it. The table \
            shows the reads' errors, the longest read, and the origin calls during the failover.

            sentinel-failover: the same readers against a throwaway Sentinel set (a master, a \
            replica, three Sentinels; a master is down after 1 s). After a second the master is \
            killed (kill -9); the failover lasts until the Sentinels name the replica.

            Without --redis, starts a throwaway redis-server and stops it at the end. With --redis \
            (invalidation only: the outage check kills its server, so it always gets a throwaway \
            one), writes keys under '\(ReliabilityKeys.prefix)' only and deletes them afterwards. \
            Each worker records at most \(ReadLog.maximumReadsPerProcess) reads; a reader that \
            reaches its share stops early, and the table says so.
            """
    )

    @Option(help: "invalidation, outage, failover, sentinel-failover, or all.")
    var check: OneOrAll<ReliabilityCheck> = .all
    @Option(help: "Worker processes.")
    var processes: Int = 4
    @Option(help: "Reader tasks per process.")
    var tasks: Int = 20
    @Option(help: "Distinct keys.")
    var keys: Int = 8
    @Option(help: "Seconds the invalidation check's readers and writer run.")
    var duration: Double = 3
    @Flag(help: "Invalidation check: the readers' caches have a near cache (200 ms).")
    var nearCache = false
    @Option(help: "Redis URL for the invalidation check (redis://[user:password@]host:port/db or unix:///path). Default: $STAMPEDE_REDIS_URL, else a throwaway server.")
    var redis: String?
    @Flag(help: "Print the results as one line of JSON too, after the tables.")
    var json = false
    @Option(help: "Invalidation check: milliseconds between the writer's writes.")
    var writeIntervalMs: Int = 10
    @Option(help: "Invalidation check: how long the simulated origin takes, in milliseconds.")
    var loadMs: Int = 5
    @Option(help: "Outage check: seconds the Redis server stays down.")
    var outageSeconds: Double = 2.5
    @Option(help: "Outage check: how long the simulated origin takes, in milliseconds.")
    var outageLoadMs: Int = 50
    @Option(help: "Seed of the readers' and the writer's key choices. Default: random (printed).")
    var seed: UInt64?

    func validate() throws {
        if redis != nil && !check.values.contains(.invalidation) {
            throw ValidationError("--redis cannot be used with --check \(check.values.map(\.rawValue).joined(separator: ",")): the outage and failover checks kill servers, so they run only against throwaway ones")
        }
        guard (1...64).contains(processes) else { throw ValidationError("--processes must be within 1...64") }
        guard (1...10_000).contains(tasks) else { throw ValidationError("--tasks must be within 1...10000") }
        guard (1...100_000).contains(keys) else { throw ValidationError("--keys must be within 1...100000") }
        guard duration >= 0.1, duration <= 600 else { throw ValidationError("--duration must be within 0.1...600 seconds") }
        guard (1...60_000).contains(writeIntervalMs) else { throw ValidationError("--write-interval-ms must be within 1...60000") }
        guard (0...60_000).contains(loadMs) else { throw ValidationError("--load-ms must be within 0...60000") }
        guard outageSeconds >= 0.1, outageSeconds <= 600 else { throw ValidationError("--outage-seconds must be within 0.1...600") }
        guard (0...60_000).contains(outageLoadMs) else { throw ValidationError("--outage-load-ms must be within 0...60000") }
    }

    func run() async throws {
        Interruption.shared.install()
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let seed = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let checks = check.values
        say("Reliability: \(processes) processes x \(tasks) readers, \(keys) keys, seed \(seed); \(MachineDescription.current())")
        var results = Results()

        if checks.contains(.invalidation) {
            try await ServerChoice.run(url: ServerChoice.userURL(redis)) { server in
                Interruption.shared.stopOnInterrupt(server.throwawayServers)
                let check = InvalidationCheck(
                    processes: processes, tasks: tasks, keys: keys, duration: duration, loadMs: loadMs,
                    writeIntervalMs: writeIntervalMs, nearCache: nearCache, seed: seed,
                    namespace: ReliabilityKeys.namespace(run: run, check: .invalidation))
                results.invalidation = try await withClient(of: server, run: run) { try await check.run(on: server, client: $0) }
            }
            Interruption.shared.stopOnInterrupt([])
            say("")
            say(results.invalidation!.table)
        }
        if checks.contains(.outage) {
            if results.invalidation != nil { say("") }
            let why = redis == nil ? "Outage check" : "The outage check kills and restarts its Redis, so not the --redis one"
            try await ServerChoice.run(url: nil, whyThrowaway: why) { server in
                Interruption.shared.stopOnInterrupt(server.throwawayServers)
                let check = OutageCheck(
                    processes: processes, tasks: tasks, keys: keys, outageSeconds: outageSeconds, loadMs: outageLoadMs,
                    seed: seed, namespace: ReliabilityKeys.namespace(run: run, check: .outage))
                results.outage = try await check.run(on: server.throwaway!)
            }
            Interruption.shared.stopOnInterrupt([])
            say("")
            say(results.outage!.table)
        }
        if checks.contains(.failover) {
            if results.invalidation != nil || results.outage != nil { say("") }
            let why = redis == nil ? "Failover check" : "The failover check kills a master, so not the --redis one"
            try await ServerChoice.run(url: nil, clusterMasters: 3, replicasPerMaster: 1, whyThrowaway: why) { server in
                Interruption.shared.stopOnInterrupt(server.throwawayServers)
                let check = OutageCheck(
                    processes: processes, tasks: tasks, keys: keys, outageSeconds: 0, loadMs: outageLoadMs,
                    seed: seed, namespace: ReliabilityKeys.namespace(run: run, check: .failover))
                results.failover = try await check.run(onFailoverOf: server.throwawayCluster!, url: server.url)
            }
            Interruption.shared.stopOnInterrupt([])
            say("")
            say(results.failover!.table)
        }
        if checks.contains(.sentinelFailover) {
            if results.invalidation != nil || results.outage != nil || results.failover != nil { say("") }
            let set = try await RedisSentinelSet.start()
            defer { set.stop() }
            say("Sentinel failover check: started a throwaway Sentinel set (master, replica, 3 Sentinels) at \(set.url) (stopped at the end).")
            Interruption.shared.stopOnInterrupt(set.servers + set.sentinels)
            let check = OutageCheck(
                processes: processes, tasks: tasks, keys: keys, outageSeconds: 0, loadMs: outageLoadMs,
                seed: seed, namespace: ReliabilityKeys.namespace(run: run, check: .sentinelFailover))
            results.sentinelFailover = try await check.run(onFailoverOf: set)
            Interruption.shared.stopOnInterrupt([])
            say("")
            say(results.sentinelFailover!.table)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            say("")
            say(String(decoding: try encoder.encode(results), as: UTF8.self))
        }
    }

    /// Runs `body` with a client of `server`; on a user's Redis, the run's keys are deleted
    /// if it fails or is interrupted.
    private func withClient<Result>(
        of server: ServerChoice, run: String, _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        let client = try RedisClient(configuration: server.configuration)
        if !server.isThrowaway {
            Interruption.shared.onInterrupt(deleteKeys: {
                (try? await Keyspace.delete(matching: ReliabilityKeys.pattern(run: run), client)) != nil
            }, named: "the run's keys", under: ReliabilityKeys.prefix)
        }
        do {
            let result = try await body(client)
            Interruption.shared.onInterrupt(deleteKeys: nil)
            await client.shutdown()
            return result
        } catch {
            // An interrupt's handler is deleting the keys with this client and will exit.
            while Interruption.shared.isInterrupted { try? await Task.sleep(for: .seconds(1)) }
            _ = try? await Keyspace.delete(matching: ReliabilityKeys.pattern(run: run), client)
            await client.shutdown()
            throw error
        }
    }

    /// What `--json` prints: the checks that ran.
    private struct Results: Encodable {
        var invalidation: InvalidationResult?
        var outage: OutageResult?
        var failover: OutageResult?
        var sentinelFailover: OutageResult?

        enum CodingKeys: String, CodingKey {
            case invalidation, outage, failover, sentinelFailover = "sentinel_failover"
        }
    }
}

/// What `stampede reliability` measures.
enum ReliabilityCheck: String, ExpressibleByArgument, CaseIterable, Sendable, Encodable {
    /// Reads that get an older version after an invalidation returned.
    case invalidation
    /// Origin calls while Redis is down.
    case outage
    /// What callers see while a cluster master fails over.
    case failover
    /// What callers see while Sentinel fails a master over.
    case sentinelFailover = "sentinel-failover"
}
