#if TLS
import EmbeddedRedis
@testable import StampedeRedis
import StampedeTestSupport
import Testing

/// A cluster client over TLS, against a TLS-only cluster (clients, bus and replication).
@Suite("TLS Cluster", .serialized, .timeLimit(.minutes(3)))
struct TLSClusterTests {
    @Test("keys in every slot range over TLS: the nodes' TLS ports come from CLUSTER SHARDS, scripts and pub/sub work")
    func keysAcrossSlotsOverTLS() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let cluster = try await RedisCluster.start(
            masters: 3, tls: .init(certificate: certificates.server, authorityFile: certificates.authorityFile))
        defer { cluster.stop() }
        try await withClient(cluster.clientConfiguration(commandTimeout: .seconds(5))) { client in
            let keys = (0..<300).map { "key:\($0)" }
            for key in keys { try await client.send("SET", RedisArgument(key), RedisArgument(key + "!")) }
            for key in keys { #expect(try await client.send("GET", RedisArgument(key)).string == key + "!") }
            #expect(try await client.run(RedisScript("return redis.call('GET', KEYS[1])"), keys: ["key:7"]).string == "key:7!")
            let nodePorts = Set(cluster.nodes.compactMap(\.port))
            let masters = try #require(client.cluster?.topology.masters)
            #expect(masters.count == 3 && masters.allSatisfy { nodePorts.contains($0.port) }, "the TLS ports: \(masters)")
            try await client.subscribe(to: ["news"]) { events in
                try await client.send("PUBLISH", "news", "over tls")
                for try await event in events {
                    if case .message(let message) = event { #expect(message.payload == Array("over tls".utf8)); break }
                }
            }
        }
    }
}
#endif
