//! The Azure Functions side of the dispatcher: the custom-handler protocol (`invocation.rs`), the functions the
//! app declares (below: what `function-app/*/function.json` must say for the handler to understand the
//! invocations), and assembling the app for `func azure functionapp publish` (`package.rs`).
//! The contract: ../shared/reference/azure-functions-custom-handler.md.

pub mod amqp;
pub mod deliver;
pub mod incoming;
pub mod invocation;
pub mod jobs;
pub mod package;
pub mod serve;
pub mod servicebus;

/// One binding of a function, as the handler relies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The key of this binding in an invocation's `Data` (a trigger) or `Outputs` (an output).
    pub name: &'static str,
    /// The function.json `type`.
    pub kind: &'static str,
    /// The queue, for Service Bus bindings (`%SETTING%` expands an app setting).
    pub queue: Option<&'static str>,
}

/// A function of the app: the host posts its invocations to `/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub trigger: Binding,
    pub outputs: &'static [Binding],
}

const fn service_bus_trigger(queue: &'static str) -> Binding {
    Binding { name: "msg", kind: "serviceBusTrigger", queue: Some(queue) }
}

/// Every function of `function-app/`.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "OnIncomingEvent",
        trigger: service_bus_trigger("%EVENTS_QUEUE%"),
        outputs: &[Binding { name: "deliveries", kind: "serviceBus", queue: Some("%DELIVERIES_QUEUE%") }],
    },
    Function { name: "DeliverWebhook", trigger: service_bus_trigger("%DELIVERIES_QUEUE%"), outputs: &[] },
    Function {
        name: "OnDeliveryDeadLettered",
        trigger: service_bus_trigger("%DELIVERIES_QUEUE%/$deadletterqueue"),
        outputs: &[],
    },
    // Forwarded as the original HTTP request to the same router as local mode (`enableForwardingHttpRequest`).
    Function {
        name: "Api",
        trigger: Binding { name: "req", kind: "httpTrigger", queue: None },
        outputs: &[Binding { name: "res", kind: "http", queue: None }],
    },
];
