import ArgumentParser
import EmbeddedRedis
import Foundation
import StampedeRedis

/// What TLS costs: GETs and connects over TLS beside plain TCP, on one throwaway server
/// that listens for both, rounds alternating.
struct TLSBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "GET throughput and connect time over TLS beside plain TCP, on one throwaway server.",
        discussion: """
            Makes a test certificate authority and a server certificate (openssl), starts a \
            throwaway redis-server with a plain port and a TLS port, and measures, rounds \
            alternating: GETs per second from 1 and from 256 tasks on one connection, and the time \
            a new client takes to connect (TCP, TLS handshake, CLIENT SETNAME) and answer a PING. \
            Needs a build with the package's TLS trait (swift build -c release --traits TLS).
            """
    )

    @Option(help: "GET commands per measurement.")
    var requests: Int = 100_000
    @Option(help: "New connections timed per measurement.")
    var connects: Int = 50
    @Option(help: "Rounds; the median of each figure is reported.")
    var rounds: Int = 3

    func validate() throws {
        guard requests >= 1_000 else { throw ValidationError("--requests must be at least 1000") }
        guard (1...1_000).contains(connects) else { throw ValidationError("--connects must be within 1...1000") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be within 1...20") }
    }

    func run() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let tlsPort = try freeLoopbackPort()
        let server = try await RedisServer.start(.init(extraArguments: [
            "--tls-port", "\(tlsPort)", "--tls-cert-file", certificates.server.certificateFile,
            "--tls-key-file", certificates.server.privateKeyFile, "--tls-ca-cert-file", certificates.authorityFile,
            "--tls-auth-clients", "optional",
        ]))
        defer { server.stop() }
        let plain = try RedisConfiguration(url: server.url)
        let tls = try RedisConfiguration(url: "rediss://127.0.0.1:\(tlsPort)?tls_ca_file=\(certificates.authorityFile)")
        say("Started a throwaway redis-server with a plain port (\(server.url)) and a TLS port (\(tlsPort)); stopped at the end.")

        var figures: [String: [Double]] = [:]
        for round in 0..<rounds {
            for (name, configuration) in round % 2 == 0 ? [("plain", plain), ("TLS", tls)] : [("TLS", tls), ("plain", plain)] {
                let client = try RedisClient(configuration: configuration)
                try await client.send("SET", "stampede:bench:value", RedisArgument(String(repeating: "x", count: 100)))
                figures["\(name) 1 task", default: []].append(try await ClientThroughput.getsPerSecond(client, tasks: 1, requests: requests / 4))
                figures["\(name) 256 tasks", default: []].append(try await ClientThroughput.getsPerSecond(client, tasks: 256, requests: requests))
                try await client.send("DEL", "stampede:bench:value")
                await client.shutdown()
                figures["\(name) connect", default: []].append(try await connectMilliseconds(configuration))
            }
            say("  round \(round + 1)/\(rounds) done")
        }
        let m = figures.mapValues { median($0) }
        print("")
        print("| figure (medians of \(rounds) rounds) | plain TCP | TLS | TLS / plain |")
        print("|---|---:|---:|---:|")
        for (label, key, format) in [
            ("GET/s, 1 task, one connection", "1 task", "%.0f"), ("GET/s, 256 tasks, one connection", "256 tasks", "%.0f"),
            ("connect + TLS handshake + first PING, ms", "connect", "%.2f"),
        ] {
            let (a, b) = (m["plain \(key)"]!, m["TLS \(key)"]!)
            print("| \(label) | \(String(format: format, a)) | \(String(format: format, b)) | \(String(format: "%.2fx", b / a)) |")
        }
    }

    /// The median time a new client takes to answer its first PING.
    private func connectMilliseconds(_ configuration: RedisConfiguration) async throws -> Double {
        var times: [Double] = []
        for _ in 0..<connects {
            let client = try RedisClient(configuration: configuration)
            let started = ContinuousClock.now
            try await client.send("PING")
            times.append((ContinuousClock.now - started).inSeconds * 1000)
            await client.shutdown()
        }
        return median(times)
    }
}
