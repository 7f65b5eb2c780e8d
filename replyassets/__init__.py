"""replyassets: Dagster platform for curated tweet-reply LoRA fine-tuning."""
