//! Container and pod statuses in the shape a kubelet writes them.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Kubernetes stores whole seconds; round so repeated writes compare equal.
pub(crate) fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn base(name: &str, image: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: String::new(),
        ..Default::default()
    }
}

/// Not started yet.
pub(crate) fn waiting(
    name: &str,
    image: &str,
    reason: &str,
    message: Option<String>,
) -> ContainerStatus {
    ContainerStatus {
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.to_string()),
                message,
            }),
            ..Default::default()
        }),
        started: Some(false),
        ..base(name, image)
    }
}

/// Running; `ready` for sidecars and main containers, not for init ones.
pub(crate) fn running(
    name: &str,
    image: &str,
    pid: u32,
    started_at: &Time,
    ready: bool,
) -> ContainerStatus {
    ContainerStatus {
        container_id: Some(container_id(pid)),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..Default::default()
        }),
        started: Some(true),
        ready,
        ..base(name, image)
    }
}

/// What a finished container reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The process's exit code (128 + signal number when killed by a signal,
    /// 128 when it could not be started).
    pub exit_code: i32,
    /// `Completed`, `Error` or `StartError`, as a kubelet says.
    pub reason: String,
    /// The termination message (from `terminationMessagePath`, or the log
    /// tail under `FallbackToLogsOnError`).
    pub message: String,
}

/// Finished. An init container that completed successfully counts as ready.
pub(crate) fn terminated(
    name: &str,
    image: &str,
    pid: Option<u32>,
    t: &Termination,
    started_at: &Time,
    finished_at: &Time,
) -> ContainerStatus {
    ContainerStatus {
        container_id: pid.map(container_id),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: t.exit_code,
                reason: Some(t.reason.clone()),
                message: (!t.message.is_empty()).then(|| t.message.clone()),
                started_at: Some(started_at.clone()),
                finished_at: Some(finished_at.clone()),
                container_id: pid.map(container_id),
                ..Default::default()
            }),
            ..Default::default()
        }),
        started: Some(false),
        ready: t.exit_code == 0,
        ..base(name, image)
    }
}

fn container_id(pid: u32) -> String {
    format!("mvo-pod-runner://{pid}")
}

/// A pod condition with the current time as its transition time.
pub(crate) fn condition(type_: &str, ok: bool, reason: Option<&str>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        last_transition_time: Some(now()),
        ..Default::default()
    }
}
