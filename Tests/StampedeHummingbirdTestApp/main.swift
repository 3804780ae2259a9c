#if Hummingbird
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Logging
import Stampede
import StampedeHummingbird
import StampedeRedis

// One instance of the app the tests run twice: routes behind the response-caching
// middleware, each counting its handler calls in Redis. Prints `listening PORT` when ready.
let environment = ProcessInfo.processInfo.environment
let port = Int(environment["PORT"] ?? "") ?? 8080
let namespace = environment["NAMESPACE"] ?? "test"
let timeToLive = Duration.milliseconds(Int(environment["TTL_MS"] ?? "") ?? 60_000)
LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }

let redis = try RedisClient(configuration: .init(environment: environment))
let pages = StampedeCache(client: redis, configuration: .init(
    namespace: namespace,
    policy: .init(timeToLive: timeToLive, staleWhileRevalidate: .seconds(60), earlyRefreshBeta: nil)))

/// Counts a handler call in Redis; returns the count.
@Sendable func counted(_ route: String) async throws -> Int {
    try await redis.send("INCR", RedisArgument("\(namespace):calls:\(route)")).int ?? 0
}

let router = Router()
router.add(middleware: ResponseCachingMiddleware(cache: pages, varyHeaders: [.acceptLanguage], shouldCache: { !$0.uri.path.hasPrefix("/limited") }))
router.get("expensive/:id") { _, context -> String in
    let id = try context.parameters.require("id")
    let call = try await counted("expensive")
    try await Task.sleep(for: .milliseconds(300))
    return "page \(id), call \(call)"
}
router.get("nostore") { _, _ -> Response in
    let call = try await counted("nostore")
    return Response(status: .ok, headers: [.cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: "call \(call)")))
}
router.get("lang") { request, _ -> String in
    _ = try await counted("lang")
    return "language \(request.headers[.acceptLanguage] ?? "none")"
}

// Idempotent orders, and a route that lets one request at a time in, across instances.
let submissions = SubmissionGuard(client: redis, keyPrefix: namespace + ":once:", window: .seconds(60))
router.group("orders").add(middleware: IdempotencyMiddleware(submissions: submissions))
    .post { request, context -> String in
        let body = try await request.body.collect(upTo: 1 << 16)
        let call = try await counted("orders")
        try await Task.sleep(for: .milliseconds(300))
        return "order \(call) for \(String(buffer: body))"
    }
let limiter = RedisSemaphore(client: redis, keyPrefix: namespace + ":limit:", permits: 1)
router.group("limited").add(middleware: ConcurrencyLimitMiddleware(semaphore: limiter, name: "limited", waitBudget: .milliseconds(100), retryAfterSeconds: 2))
    .get { _, _ -> String in
        let holders = try await redis.send("INCR", RedisArgument("\(namespace):limited:holders")).int ?? 0
        if holders > 1 { try await redis.send("INCR", RedisArgument("\(namespace):limited:excess")) }
        try await Task.sleep(for: .milliseconds(300))
        try await redis.send("DECR", RedisArgument("\(namespace):limited:holders"))
        return "served"
    }

var app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { _ in try? FileHandle.standardOutput.write(contentsOf: Data("listening \(port)\n".utf8)) })
app.addServices(redis, pages)
try await app.runService()
#else
print("the Hummingbird test app needs the package's Hummingbird trait")
#endif
