@testable import StampedeRedis
import Testing

/// Where commands go in a cluster, and what a redirection or a "try again" does to one,
/// without a server.
@Suite("Cluster routing")
struct ClusterRoutingTests {
    func slot(_ key: String) -> ClusterRoute { .slot(HashSlot(key: key)) }

    @Test("a command goes to the slot of its keys, found by its name, or to any node")
    func routes() throws {
        #expect(try ClusterRoute(command: ["GET", "user:1"]) == slot("user:1"))
        #expect(try ClusterRoute(command: ["hmget", "{n:k}", "v", "m"]) == slot("{n:k}"), "names in any case")
        #expect(try ClusterRoute(command: ["DEL", "{a}1", "{a}2", "{a}3"]) == slot("a"))
        #expect(try ClusterRoute(command: ["EVALSHA", "sha", "3", "{n:k}", "{n:k}:lock", "{n:k}:fence", "token", "10"]) == slot("n:k"))
        #expect(try ClusterRoute(command: ["EVAL", "return 1", "0", "not-a-key"]) == .anyNode, "arguments after the keys are not keys")
        #expect(try ClusterRoute(command: ["OBJECT", "ENCODING", "k"]) == slot("k"))
        for keyless: [RedisArgument] in [["TIME"], ["PING"], ["PUBLISH", "channel", "message"], ["CLUSTER", "SHARDS"], ["GET"], ["SOMETHING", "x"]] {
            #expect(try ClusterRoute(command: keyless) == .anyNode, "\(keyless)")
        }
        // A broken key count names no keys: the server will refuse the command itself.
        #expect(try ClusterRoute(command: ["EVALSHA", "sha", "9", "k"]) == .anyNode)
    }

    @Test("keys in different slots are refused before anything is sent, alone or in a pipeline")
    func crossSlot() throws {
        #expect(throws: RedisError.self) { try ClusterRoute(command: ["DEL", "a", "b"]) }
        #expect(throws: RedisError.self) { try ClusterRoute(command: ["EVAL", "s", "2", "{x}1", "{y}1"]) }
        #expect(try ClusterRoute(pipeline: [["TIME"], ["HMGET", "{n:k}", "v", "m"]]) == slot("n:k"), "the hit path's pipeline")
        #expect(try ClusterRoute(pipeline: [["GET", "{a}1"], ["PING"], ["GET", "{a}2"]]) == slot("a"))
        #expect(try ClusterRoute(pipeline: [["PING"], ["TIME"]]) == .anyNode)
        #expect(throws: RedisError.self) { try ClusterRoute(pipeline: [["GET", "a"], ["GET", "b"]]) }
    }

    // MARK: One command's life

    let here = ClusterNodeAddress(host: "127.0.0.1", port: 7000)
    let there = ClusterNodeAddress(host: "127.0.0.1", port: 7001)
    let start = ContinuousClock.now

    func topology(_ master: ClusterNodeAddress) -> ClusterTopology {
        ClusterTopology(shards: [.init(master: master, replicas: [], slots: [0...16_383])])
    }

    func machine(_ key: String = "k", timeout: Duration = .seconds(1)) -> ClusterCommandMachine {
        ClusterCommandMachine(route: .slot(HashSlot(key: key)), deadline: start + timeout)
    }

    @Test("MOVED sends the command to the new master and teaches the topology; ASK sends it once with ASKING")
    func redirections() throws {
        var topology = topology(here)
        var command = machine()
        let slot = HashSlot(key: "k")
        #expect(command.resume(topology: topology, anyNode: nil, at: start) == .send(to: here, asking: false))
        #expect(command.failed(with: RedisError(.serverError, "MOVED \(slot) \(there)"), at: start, topology: &topology)
            == .send(to: there, asking: false))
        #expect(topology.master(for: slot) == there)
        #expect(command.failed(with: RedisError(.serverError, "ASK \(slot) \(here)"), at: start, topology: &topology)
            == .send(to: here, asking: true))
        #expect(topology.master(for: slot) == there, "an ASK changes nothing for later commands")
    }

    @Test("redirections are followed a bounded number of times")
    func redirectionLoop() {
        var topology = topology(here)
        var command = machine()
        let moved = RedisError(.serverError, "MOVED \(HashSlot(key: "k")) \(there)")
        for _ in 0..<ClusterCommandMachine.maximumRedirections {
            #expect(command.failed(with: moved, at: start, topology: &topology) == .send(to: there, asking: false))
        }
        guard case .fail(let error) = command.failed(with: moved, at: start, topology: &topology) else {
            Issue.record("a redirection loop must end")
            return
        }
        #expect(error.code == .serverError)
    }

    @Test("a command that did not run is sent again after growing pauses, until its deadline")
    func retryLater() {
        var topology = topology(here)
        var command = machine(timeout: .milliseconds(100))
        let busy = RedisError(.serverError, "TRYAGAIN Multiple keys request during rehashing of slot")
        var now = start
        var pauses: [Duration] = []
        while case .pause(let pause) = command.failed(with: busy, at: now, topology: &topology) {
            pauses.append(pause)
            now += pause
        }
        #expect(pauses == [.milliseconds(10), .milliseconds(20), .milliseconds(40)], "the next pause would pass the deadline")
        #expect(command.failed(with: RedisError(.serverError, "CLUSTERDOWN The cluster is down"), at: start + .seconds(5), topology: &topology)
            == .fail(RedisError(.serverError, "CLUSTERDOWN The cluster is down")))
    }

    @Test("a node that could not be reached was sent nothing: the topology is asked for again; a lost reply is the caller's")
    func unreachable() {
        var topology = topology(here)
        var command = machine()
        #expect(command.failed(with: RedisError(.connectionRefused, "refused"), at: start, topology: &topology) == .refreshTopology)
        #expect(command.failed(with: RedisError(.connectionLost, "lost"), at: start, topology: &topology)
            == .fail(RedisError(.connectionLost, "lost")), "it may have run: never sent again")
        #expect(command.failed(with: RedisError(.timeout, "slow"), at: start, topology: &topology) == .fail(RedisError(.timeout, "slow")))
        #expect(command.failed(with: RedisError(.serverError, "WRONGTYPE x"), at: start, topology: &topology)
            == .fail(RedisError(.serverError, "WRONGTYPE x")))
        var keyless = ClusterCommandMachine(route: .anyNode, deadline: start + .seconds(1))
        #expect(keyless.resume(topology: ClusterTopology(shards: []), anyNode: nil, at: start) == .refreshTopology, "nothing known yet")
        // Past the deadline, nothing more is tried: the caller gets the error.
        guard case .fail(let late) = keyless.resume(topology: ClusterTopology(shards: []), anyNode: nil, at: start + .seconds(2)) else {
            Issue.record("a command past its deadline must not wait for another refresh")
            return
        }
        #expect(late.code == .connectionRefused)
        #expect(command.failed(with: RedisError(.connectionRefused, "refused"), at: start + .seconds(2), topology: &topology)
            == .fail(RedisError(.connectionRefused, "refused")))
    }
}
