@testable import StampedeRedis
import Testing

/// What a Sentinel's replies and messages mean for the client, without I/O.
@Suite("Sentinel state")
struct SentinelStateTests {
    @Test("a named master is news only when it differs from the last one named")
    func named() {
        var state = SentinelState(masterName: "mymaster")
        #expect(state.named(.tcp(host: "10.0.0.1", port: 6379)) == .tcp(host: "10.0.0.1", port: 6379))
        #expect(state.named(.tcp(host: "10.0.0.1", port: 6379)) == nil)
        #expect(state.named(.tcp(host: "10.0.0.2", port: 6379)) == .tcp(host: "10.0.0.2", port: 6379))
        #expect(state.master == .tcp(host: "10.0.0.2", port: 6379))
    }

    @Test("+switch-master moves this client's master only, and only to a readable address")
    func switchMessages() {
        var state = SentinelState(masterName: "mymaster")
        _ = state.named(.tcp(host: "127.0.0.1", port: 6379))
        #expect(state.heard(switchMessage: "othermaster 127.0.0.1 7000 127.0.0.1 7001") == nil)
        #expect(state.heard(switchMessage: "mymaster 127.0.0.1 6379 127.0.0.1 notaport") == nil)
        #expect(state.heard(switchMessage: "mymaster 127.0.0.1 6379") == nil)
        #expect(state.master == .tcp(host: "127.0.0.1", port: 6379))
        #expect(state.heard(switchMessage: "mymaster 127.0.0.1 6379 127.0.0.1 6380") == .tcp(host: "127.0.0.1", port: 6380))
        #expect(state.heard(switchMessage: "mymaster 127.0.0.1 6379 127.0.0.1 6380") == nil, "heard twice (from two Sentinels)")
    }

    @Test("GET-MASTER-ADDR-BY-NAME: an address, or nothing for a name the Sentinel does not know")
    func addressReplies() {
        #expect(SentinelState.masterAddress(in: .array([.bulkString(Array("127.0.0.1".utf8)), .bulkString(Array("6380".utf8))])) == .tcp(host: "127.0.0.1", port: 6380))
        #expect(SentinelState.masterAddress(in: .null) == nil)
        #expect(SentinelState.masterAddress(in: .array([.bulkString(Array("h".utf8)), .bulkString(Array("0".utf8))])) == nil)
    }
}
