import EmbeddedRedis
import Foundation
import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

/// Locks and fences on a real cluster: mutual exclusion across slots and processes, fenced
/// writes beside their key, fences across a failover that lost writes, and waiting for
/// replicas.
@Suite("Locks and fences on a Cluster", .serialized, .timeLimit(.minutes(3)), .enabled(if: hasProcFileSystem, "pauses processes"))
struct ClusterLockTests {
    static func url(_ cluster: RedisCluster) -> String {
        "redis+cluster://" + cluster.nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }.joined(separator: ",")
    }

    @Test("locks in every slot range keep mutual exclusion across processes: no update is lost")
    func mutualExclusionAcrossSlots() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration(commandTimeout: .seconds(5))) { client in
            let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
            let prefix = uniquePrefix()
            // One lock on each master.
            var names: [String] = []
            for master in topology.masters {
                names.append(try #require((0..<200).map { "lock\($0)" }.first { name in
                    !names.contains(name) && topology.master(for: HashSlot(key: RedisMutex.Keys(prefix: prefix, name: name).lock)) == master
                }))
            }
            let workers = try names.flatMap { name in
                try (0..<2).map { _ in
                    try WorkerProcess([
                        "mutex-worker", "--redis", Self.url(cluster), "--name", name, "--mode", "count",
                        "--key-prefix", prefix, "--counter", prefix + name + ":counter", "--tasks", "4", "--iterations", "15",
                    ], executable: .testWorker)
                }
            }
            for worker in workers {
                #expect(await worker.exitStatus(within: .seconds(120)) == 0, "\(worker.errorOutput)")
            }
            // Per lock: 2 processes x 4 tasks x 15 non-atomic increments, each under the lock.
            for name in names {
                #expect(try await client.send("GET", RedisArgument(prefix + name + ":counter")).int == 120, "\(name)")
            }
        }
    }

    @Test("setIfFenceIsNewest keeps its fence in its key's slot, refuses older tokens, and refuses a key whose fence could not share its slot")
    func fencedWrites() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration()) { client in
            let mutex = RedisMutex(client: client, keyPrefix: uniquePrefix())
            for key in ["invoice:7", "{order:7}:total"] {
                let fenceKey = try RedisMutex.fenceKey(ofStored: key)
                #expect(HashSlot(key: fenceKey) == HashSlot(key: key), "\(key) and \(fenceKey)")
                let older = try await mutex.withLock(key) { $0.fence }
                let newer = try await mutex.withLock(key) { $0.fence }
                #expect(try await mutex.setIfFenceIsNewest(Array("new".utf8), at: key, fence: newer))
                #expect(try await !mutex.setIfFenceIsNewest(Array("old".utf8), at: key, fence: older))
                #expect(try await client.send("GET", RedisArgument(key)).string == "new")
            }
            #expect(try RedisMutex.fenceKey(ofStored: "invoice:7") == "{invoice:7}:fence")
            #expect(try RedisMutex.fenceKey(ofStored: "{order:7}:total") == "{order:7}:total:fence")
            let error = await #expect(throws: StampedeError.self) {
                try await mutex.setIfFenceIsNewest(Array("x".utf8), at: "odd}key", fence: FencingToken(1))
            }
            #expect(error?.code == .invalidArgument)
            #expect(try await client.send("EXISTS", "odd}key").int == 0)
        }
    }

    @Test("fences never go backwards across a failover that lost the master's last writes (mutex and cache)")
    func fencesAcrossLossyFailover() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration(commandTimeout: .seconds(2))) { client in
            let prefix = uniquePrefix()
            let mutex = RedisMutex(client: client, keyPrefix: prefix)
            let cache = StampedeCache(client: client, configuration: .init(namespace: prefix, policy: .init(earlyRefreshBeta: nil)))
            // A lock and a cache key on the same master.
            let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
            let lockSlot = HashSlot(key: RedisMutex.Keys(prefix: prefix, name: "ledger").lock)
            let master = try #require(topology.master(for: lockSlot))
            let key = try #require((0..<500).map { "item:\($0)" }.first { topology.master(for: HashSlot(key: CacheFormat.Keys(namespace: prefix, key: $0).entry)) == master })
            let fenceKey = CacheFormat.Keys(namespace: prefix, key: key).fence
            let replica = try #require(try cluster.replica(of: master))

            _ = try await mutex.withLock("ledger") { $0.fence }
            _ = try await fetch(cache, key) { "v1" }
            // The replica stops hearing the master (paused, its link cut before it could read
            // more): what follows is on the master alone.
            replica.pause()
            try await withClient(RedisConfiguration(url: "redis://\(master)")) { node in
                try await node.send("CLIENT", "KILL", "TYPE", "replica")
            }
            var lastGranted = 0
            for _ in 0..<20 { lastGranted = try await mutex.withLock("ledger") { $0.fence.value } }
            try await cache.invalidate(key)
            _ = try await fetch(cache, key) { "v2" }
            let lastCacheFence = try #require(try await client.send("GET", RedisArgument(fenceKey)).int)

            // The master dies; the replica, which missed those writes, takes over.
            try #require(cluster.node(at: master)).kill()
            replica.resume()
            let promoted = try #require(replica.port)
            try await withClient(RedisConfiguration(url: "redis://127.0.0.1:\(promoted)")) { node in
                try await node.send("CLUSTER", "FAILOVER", "TAKEOVER")
                #expect(await eventually(within: .seconds(20)) { (try? await node.send("ROLE").array?.first?.string) == "master" })
                // Its copies are older than what the master handed out.
                let copied = try await node.send("GET", RedisArgument(RedisMutex.Keys(prefix: prefix, name: "ledger").fence)).int ?? 0
                #expect(copied < lastGranted, "the failover lost the last fence bumps")
            }

            // The next holder and the next leader get newer fences than any handed out before.
            let next = try await eventuallyValue(within: .seconds(30)) { try await mutex.withLock("ledger") { $0.fence.value } }
            #expect(next > lastGranted)
            try await eventuallyValue(within: .seconds(30)) { try await cache.invalidate(key) }
            #expect(try await fetch(cache, key) { "v3" } == "v3")
            let nextCacheFence = try #require(try await client.send("GET", RedisArgument(fenceKey)).int)
            #expect(nextCacheFence > lastCacheFence)
            await cache.shutdown()
        }
    }

    @Test("with replica acknowledgement: a lock is granted once a replica holds it; with the replica paused, it is released and refused")
    func waitForReplicas() async throws {
        let cluster = try await RedisCluster.start(masters: 3, replicasPerMaster: 1)
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration(commandTimeout: .seconds(2))) { client in
            let prefix = uniquePrefix()
            let metrics = TestMetrics()
            let mutex = RedisMutex(client: client, keyPrefix: prefix)
            let acknowledged = LockOptions(replicaAcknowledgement: .init(replicas: 1, timeout: .seconds(1)))
            let topology = try ClusterTopology(shardsReply: try await client.send("CLUSTER", "SHARDS"))
            let keys = RedisMutex.Keys(prefix: prefix, name: "report")
            let master = try #require(topology.master(for: HashSlot(key: keys.lock)))
            let replica = try #require(try cluster.replica(of: master))

            // After a full sync, a master streams writes to its replica only once the
            // replica's first acknowledgement came (within a second).
            let write = RedisScript("return redis.call('SET', KEYS[1], '1')")
            #expect(await eventually(within: .seconds(10)) {
                (try? await client.run(write, keys: [RedisArgument(keys.lock + ":probe")], waitingForReplicas: 1, timeout: .milliseconds(100)))?.acknowledged == 1
            })
            let fence = try await mutex.withLock("report", options: acknowledged) { lease async throws in
                // Granted only after the replica had it.
                try await withClient(RedisConfiguration(url: "redis://127.0.0.1:\(try #require(replica.port))")) { node in
                    try await node.send("READONLY")
                    #expect(try await node.send("GET", RedisArgument(keys.lock)).string == lease.token)
                }
                return lease.fence
            }
            #expect(fence.value > 0)

            replica.pause()
            defer { replica.resume() }
            let refused = await #expect(throws: StampedeError.self) {
                try await mutex.withLock("report", options: acknowledged) { _ in }
            }
            #expect(refused?.code == .noQuorum)
            // The unacknowledged grant was released: a lock without the option is free at once.
            #expect(await eventually(within: .seconds(5)) { (try? await mutex.tryLock("report") { _ in true }) == true })

            // The cache loads anyway and counts the lease as unacknowledged.
            let cache = StampedeCache.onClock(
                SystemClock(), client: client,
                configuration: .init(namespace: prefix, policy: .init(earlyRefreshBeta: nil), replicaAcknowledgement: .init(timeout: .milliseconds(300))),
                metricsFactory: metrics)
            let key = try #require((0..<500).map { "k\($0)" }.first { topology.master(for: HashSlot(key: CacheFormat.Keys(namespace: prefix, key: $0).entry)) == master })
            #expect(try await fetch(cache, key) { "loaded" } == "loaded")
            #expect(try metrics.cacheCounter("leases_unacknowledged", of: cache).totalValue == 1)
            await cache.shutdown()

            // A timeout the command timeout would cut short is refused before anything is sent.
            let tooLong = await #expect(throws: StampedeError.self) {
                try await mutex.withLock("report", options: .init(replicaAcknowledgement: .init(timeout: .seconds(5)))) { _ in }
            }
            #expect(tooLong?.code == .invalidArgument)
        }
    }
}
