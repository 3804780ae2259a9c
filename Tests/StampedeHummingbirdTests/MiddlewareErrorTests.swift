#if Hummingbird
import Hummingbird
import HummingbirdTesting
import Stampede
import StampedeHummingbird
import StampedeRedis
import Testing

/// What the middleware answers when the cache cannot, and what it leaves alone.
@Suite("ResponseCachingMiddleware errors")
struct MiddlewareErrorTests {
    @Test("Redis unavailable with a policy that fails: 503; POST passes through untouched")
    func errors() async throws {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:1")
        configuration.connectTimeout = .milliseconds(200)
        let client = try RedisClient(configuration: configuration)
        let cache = StampedeCache(client: client, configuration: .init(policy: .init(whenRedisUnavailable: .fail)))
        let router = Router()
        router.add(middleware: ResponseCachingMiddleware(cache: cache))
        router.get("page") { _, _ in "page" }
        router.post("page") { _, _ in "posted" }
        let app = Application(router: router)
        try await app.test(.router) { http in
            try await http.execute(uri: "/page", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
            }
            try await http.execute(uri: "/page", method: .post) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "posted")
            }
        }
        await client.shutdown()
    }
}
#endif
