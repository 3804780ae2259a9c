import Foundation
@testable import Stampede
import Testing

@Suite("Near cache", .timeLimit(.minutes(2)))
struct NearCacheTests {
    @Test func evictsTheLeastRecentlyUsedKey() {
        var lru = LeastRecentlyUsed<String, Int>(capacity: 3)
        lru.setValue(1, for: "a")
        lru.setValue(2, for: "b")
        lru.setValue(3, for: "c")
        #expect(lru.value(for: "a") == 1)  // a is now the most recent
        lru.setValue(4, for: "d")          // evicts b
        #expect(lru.peek("b") == nil)
        #expect(lru.peek("a") == 1 && lru.peek("c") == 3 && lru.peek("d") == 4)
        lru.removeValue(for: "c")
        lru.setValue(5, for: "e")
        lru.setValue(6, for: "f")          // evicts a (d, e, f remain)
        #expect(lru.peek("a") == nil)
        #expect(lru.count == 3)
    }

    @Test func holdsItsSizeLimitUnderAMillionDistinctKeys() async {
        let near = NearCache(capacity: 1_000)
        let expires = ContinuousClock.now + .seconds(60)
        // A second of plain CPU work: on a thread of its own, not on the shared task threads
        // that other tests' lease watchdogs need.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread {
                for index in 0..<1_000_000 {
                    near.store(.init(bytes: [UInt8(index & 0xFF)], expires: expires), for: "key:\(index)")
                }
                done.resume()
            }.start()
        }
        #expect(near.count == 1_000)
        // The newest thousand are the ones kept.
        #expect(near.entry(for: "key:999999", now: .now) != nil)
        #expect(near.entry(for: "key:998999", now: .now) == nil)
    }

    @Test func neverServesAnEntryPastItsExpiry() {
        let near = NearCache(capacity: 10)
        let now = ContinuousClock.now
        near.store(.init(bytes: [1], expires: now + .milliseconds(100)), for: "k")
        #expect(near.entry(for: "k", now: now) != nil)
        #expect(near.entry(for: "k", now: now + .milliseconds(100)) == nil)
        #expect(near.count == 0, "the expired entry is dropped")
    }

    @Test func keepsTheDecodedValueOfTheEntryItWasDecodedFrom() {
        let near = NearCache(capacity: 10)
        let expires = ContinuousClock.now + .seconds(60)
        near.store(.init(bytes: [1], expires: expires), for: "k")
        near.attach("decoded", for: "k", expires: expires)
        #expect(near.entry(for: "k", now: .now)?.decoded?.value as? String == "decoded")
        // A newer entry is not given an older decoded value.
        let later = expires + .seconds(1)
        near.store(.init(bytes: [2], expires: later), for: "k")
        near.attach("stale", for: "k", expires: expires)
        #expect(near.entry(for: "k", now: .now)?.decoded == nil)
    }
}
