#if TLS
import EmbeddedRedis
import Foundation
@testable import StampedeRedis
import StampedeTestSupport
import Testing

/// TLS against a real TLS-only redis-server with a certificate authority made for the run.
@Suite("TLS", .serialized, .timeLimit(.minutes(2)))
struct TLSTests {
    static let certificates = Result { try TestCertificates() }

    func server(_ certificate: KeyPath<TestCertificates, TestCertificates.Pair> = \.server, requiresClientCertificate: Bool = false) async throws -> (RedisServer, TestCertificates) {
        let certificates = try Self.certificates.get()
        let server = try await RedisServer.start(.init(tls: .init(
            certificate: certificates[keyPath: certificate], authorityFile: certificates.authorityFile,
            requiresClientCertificate: requiresClientCertificate)))
        return (server, certificates)
    }

    @Test("commands, pipelines, scripts and pub/sub over TLS; the certificate is checked against the IP address connected to")
    func roundTrip() async throws {
        let (server, _) = try await server()
        defer { server.stop() }
        try await withClient(RedisConfiguration(url: server.url)) { client in
            try await client.send("SET", "greeting", "hello")
            #expect(try await client.send("GET", "greeting").string == "hello")
            let replies = try await client.pipeline([["INCR", "n"], ["INCR", "n"]])
            #expect(try replies[1].get().int == 2)
            #expect(try await client.run(RedisScript("return ARGV[1]"), arguments: ["ok"]).string == "ok")
            try await client.subscribe(to: ["news"]) { messages in
                try await client.send("PUBLISH", "news", "tls")
                for try await message in messages {
                    if case .message(let message) = message {
                        #expect(String(decoding: message.payload, as: UTF8.self) == "tls")
                        break
                    }
                }
            }
        }
    }

    @Test("mutual TLS: a client certificate is sent when the server requires one; without it, a typed error")
    func clientCertificates() async throws {
        let (server, certificates) = try await server(requiresClientCertificate: true)
        defer { server.stop() }
        var configuration = try RedisConfiguration(url: server.url)
        configuration.tls?.certificateFile = certificates.client.certificateFile
        configuration.tls?.privateKeyFile = certificates.client.privateKeyFile
        try await withClient(configuration) { client async throws in
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
        var without = try RedisConfiguration(url: server.url)
        without.connectTimeout = .seconds(2)
        let error = await connectError(without)
        #expect(error?.code == .tlsFailed || error?.code == .connectionLost, "\(String(describing: error))")
    }

    @Test("an untrusted authority, an expired certificate, a certificate for another host and plaintext to the TLS port: each a typed error within the connect timeout")
    func refusals() async throws {
        let certificates = try Self.certificates.get()
        // Trusting another authority.
        let (good, _) = try await server()
        defer { good.stop() }
        var untrusted = try RedisConfiguration(url: good.url)
        untrusted.tls?.trust = .certificateAuthorityFile(certificates.otherAuthorityFile)
        #expect(await connectError(untrusted)?.code == .tlsFailed)
        // Plain TCP to the TLS port.
        let plain = try RedisConfiguration(url: "redis://127.0.0.1:\(try #require(good.port))")
        let plainError = await connectError(plain)
        #expect([.connectionLost, .connectTimeout, .protocolError, .tlsFailed].contains(plainError?.code), "\(String(describing: plainError))")

        let (expired, _) = try await server(\.expiredServer)
        defer { expired.stop() }
        // The same authority and names as the good server's: only the dates differ.
        #expect(await connectError(try RedisConfiguration(url: expired.url))?.code == .tlsFailed)

        let (otherHost, _) = try await server(\.otherHostServer)
        defer { otherHost.stop() }
        #expect(await connectError(try RedisConfiguration(url: otherHost.url))?.code == .tlsFailed)
        // With the host name check off (tests only), the chain alone is checked.
        var unchecked = try RedisConfiguration(url: otherHost.url)
        unchecked.tls?.verifiesHostname = false
        try await withClient(unchecked) { client async throws in #expect(try await client.send("PING") == .simpleString("PONG")) }
        // Or naming the host the certificate is for.
        var named = try RedisConfiguration(url: otherHost.url)
        named.tls?.serverName = "redis.example.com"
        try await withClient(named) { client async throws in #expect(try await client.send("PING") == .simpleString("PONG")) }
    }

    @Test("TLS files that cannot be read, and a key without its certificate: typed errors naming them")
    func badFiles() async throws {
        var missing = try RedisConfiguration(url: "rediss://127.0.0.1:1?tls_ca_file=/nonexistent/ca.pem")
        missing.connectTimeout = .milliseconds(500)
        let error = await connectError(missing)
        #expect(error?.code == .tlsFailed)
        #expect(error?.message.contains("/nonexistent/ca.pem") == true, "\(String(describing: error))")
        #expect(throws: RedisError.self) {
            try RedisClient(configuration: try RedisConfiguration(url: "rediss://127.0.0.1:1?tls_key_file=/k.pem"))
        }
    }

    /// The error of a first command on a client of `configuration`, and that it came within
    /// the connect timeout (and a margin for a loaded machine).
    func connectError(_ configuration: RedisConfiguration) async -> RedisError? {
        var configuration = configuration
        configuration.reconnectBackoff = .init(initial: .seconds(5), maximum: .seconds(5))
        do {
            return try await withClient(configuration) { client in
                do {
                    try await client.send("PING")
                    return nil
                } catch let error as RedisError {
                    return error
                }
            }
        } catch {
            return error as? RedisError
        }
    }
}
#endif
