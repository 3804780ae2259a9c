/// What a client that follows Sentinel knows of its master, without I/O: the master last
/// named, and whether what the Sentinels say now changes it.
struct SentinelState {
    let masterName: String
    /// The master as last named by a Sentinel (asked, or in a `+switch-master` message).
    private(set) var master: RedisConfiguration.Endpoint?

    init(masterName: String) {
        self.masterName = masterName
    }

    /// A Sentinel named `endpoint` as the master. Returns it when it is not the master known
    /// until now: the connections elsewhere must move.
    mutating func named(_ endpoint: RedisConfiguration.Endpoint) -> RedisConfiguration.Endpoint? {
        guard endpoint != master else { return nil }
        master = endpoint
        return endpoint
    }

    /// A `+switch-master` message (`NAME OLD-IP OLD-PORT NEW-IP NEW-PORT`). Returns the new
    /// master when the message is about this client's master and moves it.
    mutating func heard(switchMessage: String) -> RedisConfiguration.Endpoint? {
        let words = switchMessage.split(separator: " ")
        guard words.count == 5, words[0] == masterName, let port = Int(words[4]), (1...65535).contains(port) else { return nil }
        return named(.tcp(host: String(words[3]), port: port))
    }

    /// The reply to `SENTINEL GET-MASTER-ADDR-BY-NAME`: `[ip, port]`, or nil when that
    /// Sentinel does not know the name.
    static func masterAddress(in reply: RedisValue) -> RedisConfiguration.Endpoint? {
        guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string,
              let port = parts[1].string.flatMap({ Int($0) }), (1...65535).contains(port)
        else { return nil }
        return .tcp(host: host, port: port)
    }
}
