//! The assistant: each workspace's model provider ([`provider`], its API key sealed with
//! [`secrets`]), the client for OpenAI-compatible endpoints ([`openai`]), and conversations
//! whose answers stream from a run that outlives any socket ([`chat`]), where agents call
//! tools with the person's approval.

pub mod chat;
pub mod openai;
pub mod provider;
