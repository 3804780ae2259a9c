import EmbeddedRedis
import Foundation
import StampedeRedis
import StampedeTestSupport
import Testing

/// `stampede storm` against a Redis Cluster: a user's (a `redis+cluster://` URL) and a
/// throwaway one (`--cluster 3`).
@Suite("stampede storm on a Cluster", .serialized, .enabled(if: hasProcFileSystem, "finds the worker processes in /proc"))
struct StormClusterTests {
    @Test("against a user's cluster: keys on every master, commands counted per master, PUBLISH over the bus, nothing left behind")
    func usersCluster() async throws {
        let cluster = try await RedisCluster.start(masters: 3)
        defer { cluster.stop() }
        let url = "redis+cluster://" + cluster.nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }.joined(separator: ",")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("storm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("storm.json").path
        let storm = try WorkerProcess([
            "storm", "--redis", url, "--scenario", "miss", "--processes", "2", "--tasks", "40", "--keys", "40",
            "--load-ms", "50", "--json", json,
        ])
        #expect(await storm.exitStatus(within: .seconds(300)) == 0, "\(storm.errorOutput)")
        #expect(storm.output.contains { $0.hasPrefix("Commands per cluster master") }, "\(storm.output)")

        let reports = try String(contentsOfFile: json, encoding: .utf8).split(separator: "\n").map { try jsonObject(String($0)) }
        #expect(reports.count == 3)
        for report in reports {
            let strategy = report["strategy"] as? String ?? "?"
            #expect(report["errors"] as? Int == 0, "\(strategy): \(report["error_samples"] ?? "")")
            let perNode = try #require(report["commands_per_node"] as? [String: Int], "\(strategy)")
            #expect(perNode.count == 3, "\(strategy): \(perNode)")
            // The workers' bookkeeping (an INCR per origin call) is in the per-node counts only.
            #expect(perNode.values.reduce(0, +) == (report["redis_commands"] as? Int ?? 0) + (report["origin_calls"] as? Int ?? 0), "\(strategy)")
            if strategy == "naive" {
                // 40 keys spread over the slots: every master serves some.
                #expect(perNode.values.allSatisfy { $0 > 0 }, "\(perNode)")
            }
        }
        let stampede = try #require(reports.first { $0["strategy"] as? String == "stampede" })
        #expect(stampede["origin_calls"] as? Int == 40)
        // Each fill's PUBLISH goes from its master to the two others.
        #expect(stampede["cluster_bus_publish_messages"] as? Int == 2 * 40)

        try await withClient(cluster.clientConfiguration()) { client in
            for master in try await client.masters() {
                #expect(try await client.send(["DBSIZE"], to: master).int == 0, "\(master)")
            }
        }
    }

    @Test("--cluster 3 starts a throwaway cluster and stops every node at the end; with --redis it is refused")
    func throwawayCluster() async throws {
        let storm = try WorkerProcess(["storm", "--cluster", "3", "--scenario", "miss", "--strategy", "stampede", "--processes", "1", "--tasks", "4", "--keys", "3", "--load-ms", "10"])
        #expect(await storm.exitStatus(within: .seconds(300)) == 0, "\(storm.errorOutput)")
        let announced = try #require(storm.output.first { $0.hasPrefix("--cluster 3: started a throwaway Redis Cluster") })
        let ports = announced.split(separator: "redis+cluster://").last?.split(separator: " ").first?
            .split(separator: ",").compactMap { $0.split(separator: ":").last.flatMap { Int($0) } } ?? []
        #expect(ports.count == 3)
        for port in ports {
            await #expect(throws: RedisError.self, "node \(port) was stopped") {
                try await withClient(RedisConfiguration(url: "redis://127.0.0.1:\(port)")) { client in _ = try await client.send("PING") }
            }
        }

        let refused = try WorkerProcess(["storm", "--cluster", "3", "--redis", "redis://127.0.0.1:1"])
        #expect(await refused.exitStatus() == 64)
        #expect(refused.errorOutput.first?.contains("--cluster starts a throwaway cluster") == true, "\(refused.errorOutput)")
    }
}
