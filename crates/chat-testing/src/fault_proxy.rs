//! A TCP proxy between the service and PostgreSQL that injects faults.
//!
//! [`FaultProxy::start`] listens on a free port of 127.0.0.1 and forwards every
//! connection to the test server; [`FaultProxy::url_for`] turns a database URL
//! into one that goes through the proxy. [`FaultProxy::set`] switches what the
//! proxy does to traffic, for open and new connections alike, and
//! [`FaultProxy::heal`] goes back to plain forwarding:
//!
//! - [`Fault::Latency`]: every chunk is delayed, both ways (a slow network);
//! - [`Fault::Reset`]: a connection that sends anything has it delivered to the
//!   server, then is reset (TCP RST) before any answer comes back: a
//!   connection lost in the middle of a statement, which the server may still
//!   complete;
//! - [`Fault::BlackHole`]: connections are accepted and nothing is ever
//!   answered (a partitioned network, a hung server);
//! - [`Fault::Refuse`]: open connections are closed and new ones refused (the
//!   server is down).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

/// What the proxy does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    None,
    /// Forward both ways, each chunk this much later.
    Latency(Duration),
    /// Deliver what a connection sends, then reset it before any answer.
    Reset,
    /// Accept, hold every byte, answer nothing.
    BlackHole,
    /// Close open connections, refuse new ones.
    Refuse,
}

/// A running proxy; stops, closing every connection, on `Drop`.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    fault: watch::Sender<Fault>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close_connections();
    }
}

impl FaultProxy {
    /// A proxy in front of the test server, forwarding.
    pub async fn start() -> Self {
        let server = Url::parse(&crate::server_url().await).expect("the server URL parses");
        let target = (
            server.host_str().unwrap_or("127.0.0.1").to_owned(),
            server.port().unwrap_or(5432),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (fault, watching) = watch::channel(Fault::None);
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let now = *watching.borrow();
                let task = match now {
                    Fault::Refuse => {
                        drop(client);
                        continue;
                    }
                    // Accepted, never connected onwards: no answer ever comes.
                    Fault::BlackHole => tokio::spawn(async move {
                        let _held = client;
                        std::future::pending::<()>().await;
                    }),
                    _ => {
                        let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)).await
                        else {
                            continue;
                        };
                        tokio::spawn(forward(client, server, watching.clone()))
                    }
                };
                let mut open = open.lock().expect("lock");
                open.retain(|task| !task.is_finished());
                open.push(task);
            }
        });
        Self {
            port,
            fault,
            connections,
            accept,
        }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let mut url = Url::parse(database_url).expect("a database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.port)).expect("a port");
        url.into()
    }

    /// Switches to `fault`, for open connections and new ones.
    pub fn set(&self, fault: Fault) {
        if fault == Fault::Refuse {
            self.close_connections();
        }
        self.fault.send_replace(fault);
    }

    /// Back to plain forwarding (connections reset or refused stay closed).
    pub fn heal(&self) {
        self.set(Fault::None);
    }

    fn close_connections(&self) {
        for task in self.connections.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

async fn forward(client: TcpStream, server: TcpStream, fault: watch::Receiver<Fault>) {
    // The service must see a reset (RST), not an orderly close (FIN).
    let _ = client.set_zero_linger();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Whichever way ends first (a reset, a close) ends the connection.
    let reset = tokio::select! {
        reset = pump(&mut client_read, &mut server_write, fault.clone(), true) => reset,
        reset = pump(&mut server_read, &mut client_write, fault, false) => reset,
    };
    drop((client_read, client_write));
    if reset {
        // The server gets the statement and then an orderly end of input: it
        // runs (and may commit) the statement, as after a client lost in the
        // middle of one. Its answers are read and dropped so that closing
        // does not reset its side too.
        let _ = server_write.shutdown().await;
        let mut sink = vec![0u8; 16 * 1024];
        let drain =
            async { while matches!(server_read.read(&mut sink).await, Ok(read) if read > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    }
}

/// Copies one way until either side closes or a fault ends the connection;
/// true when it ended for [`Fault::Reset`]. `upstream` is the client-to-server
/// direction, where statements travel.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
    upstream: bool,
) -> bool {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(read) => read,
        };
        loop {
            let now = *fault.borrow_and_update();
            match now {
                Fault::None => break,
                Fault::Latency(delay) => {
                    tokio::time::sleep(delay).await;
                    break;
                }
                Fault::Reset => {
                    if upstream {
                        // The statement reaches the server; its answer never
                        // reaches the client.
                        let _ = to.write_all(&buffer[..read]).await;
                    }
                    return true;
                }
                // Hold the bytes until the fault changes.
                Fault::BlackHole | Fault::Refuse => {
                    if fault.changed().await.is_err() {
                        return false;
                    }
                }
            }
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return false;
        }
    }
}
