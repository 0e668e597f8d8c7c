//! The mall (SPEC C, O): catalog, browsing, redemption, orders and their state machine,
//! payment callbacks.

pub mod addresses;
pub mod browse;
pub mod catalog;
pub mod kinds;
pub mod order_csv;
pub mod order_state;
pub mod orders;
pub mod payments;
pub mod redeem;
pub mod staff_orders;
pub mod stock;
