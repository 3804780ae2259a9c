import EmbeddedRedis
import StampedeRedis

/// The Redis a command runs against: the user's (`--redis URL`) or a throwaway one.
struct ServerChoice {
    let configuration: RedisConfiguration
    /// The throwaway server, stopped by ``finish()``; `nil` when the user gave a URL.
    let throwaway: RedisServer?

    static func resolve(url: String?, say: (String) -> Void) async throws -> ServerChoice {
        if let url {
            return ServerChoice(configuration: try RedisConfiguration(url: url), throwaway: nil)
        }
        let server = try await RedisServer.start()
        say("No --redis given: started a throwaway redis-server at \(server.url) (stopped at the end).")
        return ServerChoice(configuration: try RedisConfiguration(url: server.url), throwaway: server)
    }

    func finish() { throwaway?.stop() }
}
