import InMemoryTracing
import StampedeRedis
import StampedeTestSupport
import Testing
import Tracing

/// Client spans, when the client is given a tracer.
@Suite("RedisClient spans")
struct ClientTracingTests {
    @Test("a client span per command and per pipeline, named after it, without its keys or values")
    func commandSpans() async throws {
        try await withPrivateServer { server in
            let tracer = InMemoryTracer()
            let client = try RedisClient(configuration: try RedisConfiguration(url: server.url), tracer: tracer)
            try await client.send("SET", "secret-key", "secret-value")
            _ = try await client.pipeline([["GET", "secret-key"], ["TIME"]])
            await client.shutdown()
            let spans = tracer.finishedSpans
            #expect(spans.map(\.operationName) == ["SET", "PIPELINE"])
            #expect(spans.allSatisfy { $0.kind == .client })
            for span in spans {
                let text = "\(span.attributes)"
                #expect(text.contains("redis") && !text.contains("secret"), "\(text)")
            }
        }
    }
}
