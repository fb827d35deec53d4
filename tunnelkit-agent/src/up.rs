//! `tunnelkit up NAME` on the agent's side: (re)start the profile with this client attached for
//! prompts, tell the client what is happening while it waits ([`Reply::Progress`]), and reply
//! once a route is up or with why it is not. A client that goes away (Ctrl-C) is noticed at
//! once: its prompts are detached and the profile keeps trying on its own.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tunnelkit_core::Event;

use crate::platform::control::{ReadHalf, WriteHalf};
use crate::protocol::{decode_client_message, encode_reply, ClientMessage, Reply, Response};
use crate::protocol::{done, error, read_line, MAX_CLIENT_LINE};
use crate::registry::{Attached, RegistryHandle, UpStarted};

/// `up` replies within this time (time spent waiting for a person's answer is not counted).
pub const UP_DEADLINE: Duration = Duration::from_secs(60);
/// A person has this long to answer a prompt.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(300);

/// Serves one `up` request.
pub(crate) async fn up(
    name: &str,
    interactive: bool,
    registry: &RegistryHandle,
    read: &mut BufReader<ReadHalf>,
    write: &mut WriteHalf,
) -> Reply {
    let Attached {
        mut events,
        mut jobs,
        relay,
        standby,
        up_on,
    } = match registry.up(name, interactive).await {
        Err(e) => return error(e.to_string()),
        Ok(UpStarted::AlreadyUp { route }) => {
            return done(Response::Up {
                name: name.to_string(),
                route,
            })
        }
        Ok(UpStarted::Started(a)) => a,
    };
    if let (Some(route), None) = (&up_on, &standby) {
        // Up already (a session shared with another profile), nothing else awaited.
        relay.detach();
        return done(Response::Up {
            name: name.to_string(),
            route: Some(route.clone()),
        });
    }
    let mut deadline = Instant::now() + UP_DEADLINE;
    // Set once a route is up while the hot standby's login is still awaited.
    let mut up_route = up_on;
    let waiting = match (&up_route, &standby) {
        (Some(on), Some(st)) => {
            format!("up on route {on}; logging in to the hot standby route {st}")
        }
        _ => format!(
            "started; waiting up to {}s for a route to come up",
            UP_DEADLINE.as_secs()
        ),
    };
    if write
        .write_all(&encode_reply(&Reply::Progress {
            text: waiting.clone(),
        }))
        .await
        .is_err()
    {
        relay.detach();
        return error("client went away");
    }
    let mut last: Option<String> = Some(waiting);
    let result = loop {
        let job = async {
            match jobs.as_mut() {
                Some(j) => j.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if let (Some(on), Some(st)) = (up_route.take(), &standby) {
                    let text = format!("hot standby route {st}: no login within {}s; the agent keeps trying", UP_DEADLINE.as_secs());
                    let _ = write.write_all(&encode_reply(&Reply::Progress { text })).await;
                    break done(Response::Up { name: name.to_string(), route: Some(on) });
                }
                let last = last.as_deref().map(|l| format!(" (last: {l})")).unwrap_or_default();
                break error(format!(
                    "{name}: no route came up within {}s{last}; the agent keeps trying (see `tunnelkit status`)",
                    UP_DEADLINE.as_secs()
                ));
            }
            gone = read.fill_buf() => {
                // Nothing is expected from the client until a prompt: data or EOF ends it.
                tracing::debug!("the `up` client went away ({})", match gone {
                    Ok([]) => "closed".to_string(),
                    Ok(_) => "sent something unasked".to_string(),
                    Err(e) => e.to_string(),
                });
                break error("client went away");
            }
            Some(job) = job => {
                let asked = Instant::now();
                let prompt = Reply::Prompt { text: job.text.clone(), echo: job.echo, confirm: job.confirm };
                if write.write_all(&encode_reply(&prompt)).await.is_err() {
                    break error("client went away");
                }
                let answer = match read_line(read, MAX_CLIENT_LINE, ANSWER_DEADLINE).await {
                    Ok(l) => match decode_client_message(&l) {
                        Ok(ClientMessage::Answer { value }) => value,
                        Err(_) => None,
                    },
                    Err(_) => None,
                };
                let _ = job.answer.send(answer);
                deadline += asked.elapsed();
            }
            ev = events.recv() => match ev {
                Ok(Event::RouteUp { route, .. }) => match &standby {
                    // The hot standby's login comes next: its code is asked while someone is here.
                    Some(st) if *st != route => {
                        let text = format!("route {route} is up; logging in to the hot standby route {st}");
                        up_route = Some(route);
                        last = Some(text.clone());
                        if write.write_all(&encode_reply(&Reply::Progress { text })).await.is_err() {
                            break error("client went away");
                        }
                    }
                    _ => break done(Response::Up { name: name.to_string(), route: Some(route) }),
                },
                Ok(Event::StandbyReady { route, .. }) if up_route.is_some() && standby.as_ref() == Some(&route) => {
                    let text = format!("hot standby route {route}: ready (authenticated)");
                    let _ = write.write_all(&encode_reply(&Reply::Progress { text })).await;
                    break done(Response::Up { name: name.to_string(), route: up_route.take() });
                }
                Ok(Event::StandbyBroken { route, reason, .. }) if up_route.is_some() && standby.as_ref() == Some(&route) => {
                    let text = format!("hot standby route {route} is NOT ready: {reason}");
                    let _ = write.write_all(&encode_reply(&Reply::Progress { text })).await;
                    break done(Response::Up { name: name.to_string(), route: up_route.take() });
                }
                Ok(Event::RouteFailed { reason, failure, .. }) if failure.needs_input() && !interactive => {
                    break error(format!("{name} {reason}; run `tunnelkit up {name}` on a terminal to answer"));
                }
                Ok(Event::Stopped { error: Some(e) }) => break error(format!("{name}: {e}")),
                Ok(Event::RouteFailed { reason, failure, .. }) if failure.never_retried() => break error(format!("{name}: {reason}")),
                Ok(e) => {
                    let text = e.to_string();
                    let note = Reply::Progress { text: text.clone() };
                    last = Some(text);
                    if write.write_all(&encode_reply(&note)).await.is_err() {
                        break error("client went away");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break error(format!("{name} stopped")),
            },
        }
    };
    relay.detach();
    result
}
