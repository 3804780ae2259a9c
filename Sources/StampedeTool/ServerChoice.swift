import EmbeddedRedis
import Foundation
import StampedeRedis

/// The Redis a command runs against: the user's (`--redis URL`) or a throwaway one.
struct ServerChoice {
    let configuration: RedisConfiguration
    /// The URL to hand to worker processes.
    let url: String
    /// The throwaway server, stopped at the end; `nil` when the user gave a URL.
    let throwaway: RedisServer?

    /// Runs `body` against the user's Redis or a throwaway one (stopped afterwards). Every
    /// failure to start or reach Redis becomes one clear line and a non-zero exit.
    /// `whyThrowaway` opens the line that announces a throwaway server.
    static func run<Result>(
        url: String?, whyThrowaway: String = "No --redis given", _ body: (ServerChoice) async throws -> Result
    ) async throws -> Result {
        let server: ServerChoice
        do {
            if let url {
                server = ServerChoice(configuration: try RedisConfiguration(url: url), url: url, throwaway: nil)
            } else {
                let started = try await RedisServer.start()
                say("\(whyThrowaway): started a throwaway redis-server at \(started.url) (stopped at the end).")
                server = ServerChoice(configuration: try RedisConfiguration(url: started.url), url: started.url, throwaway: started)
            }
        } catch let error as RedisError {
            throw ToolError(error.message)
        } catch {
            throw ToolError("could not start a throwaway redis-server: \(error)")
        }
        defer { server.throwaway?.stop() }
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
