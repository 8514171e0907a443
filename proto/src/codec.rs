//! The protobuf codec of the generated services: prost's, except that a
//! message that is not valid protobuf is `INVALID_ARGUMENT` (the sender's
//! fault, and the same code as any other malformed input), not the
//! `INTERNAL` prost's codec gives, which tells a client the switch failed.
//! Like every error of the switch it carries an `ErrorInfo` (domain
//! `ponte.v1`, reason `MALFORMED_MESSAGE`).

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with malformed messages read as `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Default)]
pub struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CheckedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder(self.0.decoder())
    }
}

/// Decodes as prost does; a decoding failure is `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Default)]
pub struct CheckedDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for CheckedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            if status.code() == tonic::Code::Internal {
                use tonic_types::StatusExt;
                let info = tonic_types::ErrorDetails::with_error_info(
                    "MALFORMED_MESSAGE",
                    "ponte.v1",
                    std::collections::HashMap::new(),
                );
                let message = format!("the message is not valid protobuf: {}", status.message());
                Status::with_error_details(tonic::Code::InvalidArgument, message, info)
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
