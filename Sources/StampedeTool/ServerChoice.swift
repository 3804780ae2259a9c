import EmbeddedRedis
import Foundation
import StampedeRedis

/// The Redis a command runs against: the user's (`--redis URL`), a throwaway server, or a
/// throwaway cluster.
struct ServerChoice {
    let configuration: RedisConfiguration
    /// The URL to hand to worker processes.
    let url: String
    /// The throwaway server, stopped at the end; `nil` when the user gave a URL or a
    /// throwaway cluster runs.
    let throwaway: RedisServer?
    /// The throwaway cluster, stopped at the end.
    var throwawayCluster: RedisCluster? = nil

    var isThrowaway: Bool { throwaway != nil || throwawayCluster != nil }
    /// What an interrupt stops.
    var throwawayServers: [RedisServer] { throwawayCluster?.nodes ?? throwaway.map { [$0] } ?? [] }

    /// The environment variable that names the user's Redis when `--redis` is not given, so
    /// that a password need not be typed on a command line.
    static let urlVariable = "STAMPEDE_REDIS_URL"

    /// The user's Redis URL: `--redis`, else ``urlVariable``, else `nil` (a throwaway server).
    static func userURL(_ flag: String?) -> String? {
        flag ?? ProcessInfo.processInfo.environment[urlVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Runs `body` against the user's Redis or a throwaway one (stopped afterwards). Every
    /// failure to start or reach Redis becomes one clear line and a non-zero exit.
    /// `whyThrowaway` opens the line that announces a throwaway server. With
    /// `clusterMasters` and no URL, a throwaway cluster of that many masters (with
    /// `replicasPerMaster` replicas each) runs instead.
    static func run<Result>(
        url: String?, clusterMasters: Int? = nil, replicasPerMaster: Int = 0, whyThrowaway: String = "No --redis given",
        _ body: (ServerChoice) async throws -> Result
    ) async throws -> Result {
        let server: ServerChoice
        do {
            if let url {
                server = ServerChoice(configuration: try RedisConfiguration(url: url), url: url, throwaway: nil)
            } else if let clusterMasters {
                let started = try await RedisCluster.start(masters: clusterMasters, replicasPerMaster: replicasPerMaster)
                let url = "redis+cluster://" + started.nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }.joined(separator: ",")
                let replicas = replicasPerMaster == 0 ? "" : " with \(replicasPerMaster) replica\(replicasPerMaster == 1 ? "" : "s") each"
                say("\(whyThrowaway): started a throwaway Redis Cluster of \(clusterMasters) masters\(replicas) at \(url) (stopped at the end).")
                server = ServerChoice(configuration: try RedisConfiguration(url: url), url: url, throwaway: nil, throwawayCluster: started)
            } else {
                let started = try await RedisServer.start()
                say("\(whyThrowaway): started a throwaway redis-server at \(started.url) (stopped at the end).")
                server = ServerChoice(configuration: try RedisConfiguration(url: started.url), url: started.url, throwaway: started)
            }
        } catch let error as RedisError {
            throw ToolError(error.message)
        } catch {
            throw ToolError("could not start a throwaway \(clusterMasters == nil ? "redis-server" : "Redis Cluster"): \(error)")
        }
        defer {
            server.throwaway?.stop()
            server.throwawayCluster?.stop()
        }
        do {
            return try await body(server)
        } catch let error as RedisError {
            throw ToolError("Redis at \(server.configuration.endpoint) failed: \(error.code): \(error.message)")
        }
    }
}

/// One line on standard error and a non-zero exit.
struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
