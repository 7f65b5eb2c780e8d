"""Text pools for scripts/make_sample.py: topic-specific fragments that compose into
natural, varied tweets and replies. Placeholders in braces are filled from SLOTS."""

from __future__ import annotations

QUERIES = {
    "ai-agents": '("AI agents" OR "agentic") (production OR lessons OR evals) -crypto -giveaway lang:en',
    "python-tips": '(python) (tip OR pattern OR gotcha OR "til") -crypto -nft lang:en',
    "startup-advice": '(founder OR startup) (advice OR lessons OR mistake) -crypto -web3 lang:en',
    "indie-hacking": '("indie hacker" OR "build in public" OR bootstrapped) (revenue OR launch) -crypto lang:en',
    "remote-work": '("remote work" OR "remote team" OR async) (lessons OR tips) -crypto lang:en',
    "devops-lessons": '(kubernetes OR terraform OR "on-call" OR incident) (lessons OR postmortem) -crypto lang:en',
}

SLOTS = {
    "ai-agents": {
        "tool": ["LangGraph", "a plain while loop", "the OpenAI Agents SDK", "CrewAI", "our homegrown planner",
                 "a state machine", "function calling", "MCP servers", "a ReAct loop", "DSPy"],
        "task": ["support ticket triage", "invoice reconciliation", "code review comments", "lead enrichment",
                 "SQL report generation", "onboarding emails", "flaky test triage", "contract clause extraction",
                 "calendar scheduling", "log summarization"],
        "num": ["40", "200", "12", "60", "500", "25", "90", "150"],
        "period": ["two weeks", "a month", "one sprint", "three months", "a quarter", "six weeks"],
    },
    "python-tips": {
        "tool": ["dataclasses", "pydantic", "functools.cache", "pathlib", "itertools.groupby", "typing.Protocol",
                 "contextlib.ExitStack", "asyncio.TaskGroup", "uv", "ruff", "pytest fixtures", "enumerate"],
        "task": ["parsing config files", "a CLI tool", "our ETL scripts", "a Django monolith", "data cleaning jobs",
                 "test suites", "a scraping pipeline", "notebook code", "a FastAPI service", "batch reports"],
        "num": ["3", "10", "40", "2", "15", "30", "5"],
        "period": ["a week", "two sprints", "a month", "one afternoon", "a weekend", "a year"],
    },
    "startup-advice": {
        "tool": ["a spreadsheet CRM", "weekly investor updates", "customer interviews", "a waitlist",
                 "cold email", "founder-led sales", "usage-based pricing", "annual contracts", "a design partner program"],
        "task": ["hiring our first engineer", "raising the seed round", "finding product market fit",
                 "pricing the enterprise tier", "picking a cofounder", "the first ten customers",
                 "closing a pilot", "choosing a niche"],
        "num": ["3", "8", "12", "20", "30", "50"],
        "period": ["six months", "eighteen months", "a year", "two quarters", "nine months"],
    },
    "indie-hacking": {
        "tool": ["Stripe", "a Notion template", "a Chrome extension", "Gumroad", "a newsletter", "SEO landing pages",
                 "a lifetime deal", "Product Hunt", "a Discord community", "Reddit posts", "programmatic SEO"],
        "task": ["my invoicing app", "a habit tracker", "a screenshot tool", "a job board", "an API wrapper",
                 "a resume builder", "a podcast transcription app", "a tiny analytics product"],
        "num": ["200", "1,500", "900", "3k", "40", "120", "600"],
        "period": ["three months", "a year", "eight weeks", "two years", "one summer"],
    },
    "remote-work": {
        "tool": ["written RFCs", "Loom videos", "a team handbook", "async standups", "Slack huddles",
                 "shared calendars", "a decision log", "Notion docs", "Friday demos", "office hours"],
        "task": ["onboarding new hires", "cross timezone planning", "performance reviews", "incident handoffs",
                 "design reviews", "sprint planning", "mentoring juniors", "quarterly offsites"],
        "num": ["4", "9", "14", "25", "60", "7"],
        "period": ["two years", "a quarter", "six months", "the pandemic", "a year"],
    },
    "devops-lessons": {
        "tool": ["Terraform", "Argo CD", "Helm charts", "PagerDuty", "Prometheus alerts", "feature flags",
                 "canary deploys", "Kubernetes", "Grafana dashboards", "runbooks"],
        "task": ["database migrations", "certificate renewals", "autoscaling", "the on-call rotation",
                 "disaster recovery drills", "log retention", "secret rotation", "cost reviews"],
        "num": ["3", "11", "45", "2", "18", "70"],
        "period": ["a quarter", "two years", "a month", "one long weekend", "half a year"],
    },
}

TWEETS = {
    "ai-agents": [
        "Hot take: most AI agents in production are just {tool} with a retry budget and a prayer.",
        "We replaced a human queue for {task} with an agent. Accuracy is fine, the edge cases are brutal.",
        "Nobody talks about evals for agents. If you cannot measure {task}, you cannot ship it.",
        "Lessons from running agents on {task} for {period}: fewer tools, shorter prompts, more logging.",
        "Agentic workflows are overhyped for {task} and underhyped for boring back office work.",
        "The hardest part of building agents is not the model, it is deciding when the agent should stop.",
        "Our agent handled {num} tasks yesterday. {num} of them needed a human. Still worth it.",
        "If your agent needs {num} tools to do {task}, you probably need a workflow, not an agent.",
        "Reminder that {tool} is enough for most agent use cases. Frameworks come later.",
        "What is the most useful thing an AI agent does for your team right now? Genuinely curious.",
    ],
    "python-tips": [
        "Python tip: {tool} will clean up more of {task} than you expect.",
        "TIL you can use {tool} to replace half the boilerplate in {task}.",
        "Unpopular opinion: {tool} is underused in {task}. Fight me.",
        "The most common Python gotcha I see in code review is mutable default arguments. Still, in {period}.",
        "Spent {period} rewriting {task} with {tool}. The diff is mostly deletions.",
        "What Python feature made you a better programmer? Mine was {tool}.",
        "If your Python script is slow, profile it first. It is never the part you think.",
        "Python packaging in 2025: {tool} and a lockfile. That is the whole post.",
        "Type hints saved us from {num} bugs in {task} last quarter. Worth the friction.",
        "Stop catching bare exceptions in {task}. Your future self will thank you.",
    ],
    "startup-advice": [
        "Founder advice I wish I had earlier: talk to {num} customers before writing any code.",
        "Biggest mistake we made: {task} too early. Took {period} to recover.",
        "{tool} got us our first paying customers. Nothing fancy, just consistency.",
        "Startup lesson: your pricing page is a product. Treat {task} like a feature launch.",
        "If you are {task}, optimize for speed of learning, not speed of building.",
        "Most startups do not die from competition. They die from founders avoiding {task}.",
        "We spent {period} on a feature nobody asked for. Now every roadmap item needs a customer quote.",
        "Hot take: {tool} beats paid ads until you have real retention.",
        "Raising money is a full time job. Plan for {period} and keep shipping anyway.",
        "What was the single best piece of advice you got as a first time founder?",
    ],
    "indie-hacking": [
        "Month {num} of building in public: {task} just crossed its first real revenue milestone.",
        "Launched {task} on {tool} this week. Traffic spiked, signups did not. Lessons thread below.",
        "Bootstrapped update: {task} makes enough to cover rent. Took {period} of evenings.",
        "Indie hackers overthink the tech stack and underthink distribution. {tool} taught me that.",
        "My most profitable marketing channel for {task} is still {tool}. Boring works.",
        "Killed {task} after {period}. No regrets, the next idea is already getting signups.",
        "Building in public is great until a competitor copies your landing page word for word.",
        "Pricing experiment on {task}: doubled the price, churn stayed flat. Should have done it sooner.",
        "What is your revenue from side projects this year? Mine is embarrassingly small and I am fine with it.",
        "Shipping small things weekly beats one big launch. {period} of data agrees.",
    ],
    "remote-work": [
        "Remote work tip: {tool} fixed more of our {task} problems than any new tool.",
        "After {period} fully remote, the biggest lesson is to write everything down.",
        "Async by default, sync by exception. {tool} made that real for our team of {num}.",
        "Remote teams do not fail at work, they fail at {task}.",
        "Hot take: most meetings in remote teams could be {tool}.",
        "Our {num} person team spans five timezones. {task} is the hardest part, not the work itself.",
        "Remote work lesson: loneliness is a real operational risk. Plan for it like any other risk.",
        "We tried {tool} for {period}. Fewer meetings, better decisions, slower small talk.",
        "What is one async habit that made your remote team better? Collecting ideas.",
        "The best remote managers I know over-communicate context and under-communicate urgency.",
    ],
    "devops-lessons": [
        "Postmortem lesson: our outage was not {tool}, it was {task} nobody owned.",
        "On-call tip: if an alert fires {num} times a week and nobody acts, delete it.",
        "Spent {period} cleaning up {tool}. The real fix was fewer environments.",
        "Kubernetes is great until {task} breaks at 3am. Practice it before you need it.",
        "Incident lesson: {tool} saved us, but only because someone tested it last month.",
        "Hot take: most teams adopt {tool} before they have the problem it solves.",
        "Our biggest reliability win this year was boring: {task} on a schedule.",
        "Terraform state drift bit us again. {period} of manual changes caught up with us.",
        "What is the one runbook you wish your team had written before the last incident?",
        "Blameless postmortems only work if leadership actually reads them.",
    ],
}

# Reply building blocks, per topic: claims, anecdotes, questions.
CLAIMS = {
    "ai-agents": [
        "The trick for us was giving the agent a hard step budget and a clear escalation path to a human.",
        "Evals matter more than the framework, we keep a golden set of {num} real cases and run it on every prompt change.",
        "Tool descriptions are basically the new API docs, vague wording there causes most of our wrong calls.",
        "Deterministic code for the happy path and the model only for the messy judgment calls works better than a fully autonomous setup.",
        "Logging every intermediate thought and tool result is the only way we could debug weird behavior after the fact.",
        "Smaller models with narrow tools beat the biggest model with twenty tools on latency and cost for us.",
        "Retries hide real failures, we cap them at two and alert when the cap is hit.",
        "Structured outputs with a strict schema removed almost all the parsing bugs we used to chase.",
        "Human review queues are not a failure of the agent, they are part of the product design.",
        "Memory is overrated for most business agents, a good retrieval step over recent records is enough.",
        "The cost curve surprised us, long context windows on every step added up faster than expected.",
        "Agents fail quietly, so the dashboard that tracks escalations per day became our main health signal.",
        "Writing the task as a checklist in the system prompt made behavior far more predictable than clever prose.",
        "Sandboxing tool calls with read only credentials first saved us from at least one scary mistake.",
    ],
    "python-tips": [
        "Frozen dataclasses with slots made our config objects faster and stopped accidental mutation in tests.",
        "Using pathlib everywhere instead of string paths removed a whole class of Windows bugs for our users.",
        "A generator pipeline kept memory flat when the input files grew from megabytes to gigabytes.",
        "Protocols let us type duck typed code without forcing every class to inherit from a base.",
        "Putting ruff in pre-commit ended most style debates during review within a single week.",
        "The walrus operator is great inside comprehensions but I avoid it anywhere a junior has to read it.",
        "Most slow scripts I profile spend their time in repeated attribute lookups inside tight loops.",
        "Context managers for temporary state changes made our tests much less flaky than manual cleanup.",
        "Returning early instead of nesting conditions makes validation functions so much easier to read.",
        "Keyword only arguments after a star prevent so many silent bugs when signatures change later.",
        "Structural pattern matching cleaned up our message handler that used to be a giant chain of elifs.",
        "Lockfiles plus a single command setup cut onboarding for new contributors from hours to minutes.",
        "Enumerate with a start argument is tiny but it removed off by one errors from our report code.",
        "Parametrized fixtures let us test every storage backend with the same suite without copy paste.",
    ],
    "startup-advice": [
        "Talking to churned customers taught us more than any survey of happy users ever did.",
        "Charging from day one filtered out the polite interest and showed us who actually had the problem.",
        "A narrow niche felt scary but it made every sales call and landing page dramatically easier.",
        "Weekly metrics reviews with the whole team kept everyone honest about what was really working.",
        "Hiring slowly felt painful, firing fast felt worse, so we now run paid trial projects first.",
        "The first version of pricing is always wrong, what matters is making it easy to change later.",
        "Investors remember momentum, so short monthly updates with real numbers opened more doors than decks.",
        "Founder led sales is exhausting but it is the only way to hear objections in the customer's own words.",
        "Cutting scope to one workflow we could do perfectly beat building five mediocre features.",
        "Default alive math on a simple spreadsheet changed how we thought about every hiring decision.",
        "Design partners who pay even a small amount give much more honest feedback than free pilots.",
        "Saying no to custom enterprise requests early kept the product coherent for everyone else.",
        "A cofounder agreement written during good times saved the company when things got tense.",
        "Retention curves told us the truth about product fit long before revenue numbers did.",
    ],
    "indie-hacking": [
        "Distribution first worked for me, I built an audience around the problem before writing code.",
        "Raising prices was the single highest leverage change, support requests even went down afterwards.",
        "A boring niche with clear buyers beats a clever idea that needs to educate the market.",
        "Writing one detailed tutorial per week brought steady organic signups months later.",
        "Annual plans fixed my cash flow anxiety and made planning the next quarter much calmer.",
        "Launch platforms give a spike, but search traffic is what keeps paying the bills.",
        "Automating onboarding emails freed up evenings that I now spend on actual product work.",
        "Sharing real revenue numbers publicly brought in more beta users than any ad campaign.",
        "Keeping the stack boring meant I could fix production bugs from my phone during holidays.",
        "Talking to the first twenty users on calls shaped the roadmap more than any analytics tool.",
        "A free tool that solves one small piece of the problem became my best lead magnet.",
        "Shutting down a side project is not failure, it frees attention for the one that has traction.",
        "Charging in local currency for a few countries quietly improved conversion on the checkout page.",
        "Writing changelogs publicly made existing customers feel heard and reduced churn noticeably.",
    ],
    "remote-work": [
        "Writing decisions down with the context behind them saved us from endless repeated discussions.",
        "Core overlap hours of three hours per day gave us enough collaboration without burning anyone out.",
        "Recorded walkthroughs replaced most onboarding calls and new hires can rewatch them anytime.",
        "Explicit response time expectations in the handbook removed a lot of anxiety about slow replies.",
        "Async standups in a thread worked better once we asked for blockers instead of status lists.",
        "Regular in person offsites twice a year made the remote months noticeably smoother for everyone.",
        "Camera optional meetings increased participation from the quieter folks on our team.",
        "A shared decision log means nobody has to ask who agreed to what three months ago.",
        "Managers need to schedule casual one on ones, otherwise remote reports only hear from them about problems.",
        "Rotating meeting times across timezones made the burden fair instead of always hitting the same people.",
        "Good documentation is the real office in a remote company, everything else is just tooling.",
        "Clear ownership of each project mattered more than any collaboration tool we tried.",
        "A home office stipend paid for itself in fewer sick days and happier engineers.",
        "Demo days every Friday gave remote teammates visibility into work they would never see otherwise.",
    ],
    "devops-lessons": [
        "Game days where we break staging on purpose found more gaps than any architecture review.",
        "Alert on symptoms users feel, not on every CPU spike, that single change halved our pages.",
        "Runbooks need an owner and a review date or they silently rot until the worst possible moment.",
        "Small frequent deploys with automatic rollback made incidents boring, which is exactly the goal.",
        "Keeping infrastructure code in the same review process as app code caught drift early.",
        "Every postmortem action item needs a ticket and a deadline or it never actually happens.",
        "Restoring backups regularly is the only proof that they work, we learned that one painfully.",
        "Limiting who can change production by hand forced us to automate the scary manual steps.",
        "Dashboards per service with the same four golden signals made handoffs between teams much easier.",
        "Feature flags let us separate deploy from release and cut rollback time to seconds.",
        "Compensating on-call time properly did more for reliability than any new monitoring vendor.",
        "Tagging every cloud resource with an owner turned the monthly cost review into a short meeting.",
        "Certificate expiry monitoring is cheap insurance, we got burned once and never again.",
        "Writing the timeline first during a postmortem keeps the discussion factual instead of emotional.",
    ],
}

ANECDOTES = {
    "ai-agents": [
        "We shipped an agent for {task} and it confidently invented policy details for a week before anyone noticed.",
        "Our first version used {tool} and looped forever on one malformed input until the bill arrived.",
        "After {period} running {task} with an agent, about {num} percent of cases still go to a person.",
        "We moved {task} from {tool} to plain code plus one model call and latency dropped by half.",
        "The agent doing {task} got much better once we showed it three real examples instead of rules.",
        "Last month our {task} agent retried a failing API {num} times in a row, now we have a circuit breaker.",
        "I spent {period} tuning prompts for {task} when the real issue was stale data in the retrieval step.",
        "Switching {task} to {tool} was painful, but the traces finally made failures understandable.",
        "Our support team now reviews the agent drafts for {task} and accepts most of them unchanged.",
        "We killed the autonomous mode for {task} after {period} and kept the assistant suggestions instead.",
    ],
    "python-tips": [
        "I rewrote {task} with {tool} over {period} and the code shrank by about a third.",
        "We found a bug in {task} where a default list argument leaked state between calls for months.",
        "Moving {task} to {tool} made the tests readable enough that new hires now write them on day one.",
        "Profiling {task} showed {num} percent of the runtime in a single regex compiled inside a loop.",
        "Our {task} used to crash on odd encodings until we opened every file with an explicit encoding.",
        "Adopting {tool} in {task} took {period} but the number of review comments dropped a lot.",
        "A teammate replaced a hundred lines of {task} with {tool} and nobody could argue with the result.",
        "I taught {tool} to interns this summer and it clicked faster than classes ever did for them.",
        "Type checking {task} found {num} functions that could return None where callers never expected it.",
        "We cut the runtime of {task} from minutes to seconds by batching database calls instead of looping.",
    ],
    "startup-advice": [
        "We spent {period} on {task} before realizing nobody on the team owned the outcome.",
        "{tool} brought in our first {num} customers, and most of them still renew every year.",
        "When we were {task}, the best signal came from customers who complained loudly but stayed.",
        "Our seed pitch only clicked after we replaced market size slides with {num} customer quotes.",
        "I delayed {task} for {period} out of fear and it cost us a lot more than the awkward conversation.",
        "We tried {tool} for {task} and learned more in one week than in the previous quarter of planning.",
        "A mentor told me to write down the reason for every hire, and it stopped {num} bad decisions.",
        "During {task} we lost our biggest prospect because the demo tried to show every feature at once.",
        "Running {tool} every Friday kept our tiny team aligned through {period} of chaos.",
        "Our burn dropped by half after {task} forced us to cancel tools nobody opened anymore.",
    ],
    "indie-hacking": [
        "{task} sat at zero revenue for {period} until I added {tool} and a proper pricing page.",
        "My launch on {tool} brought {num} visitors and exactly two paying users, but both became great testimonials.",
        "I built {task} over {period} of early mornings before my day job, slow but steady.",
        "The first dollar from {task} came from a forum comment, not from any launch I planned.",
        "Switching {task} to {tool} for payments removed a whole weekend of tax paperwork each quarter.",
        "I almost quit {task} at {num} users, then one agency bought the team plan and everything changed.",
        "Rebuilding the landing page for {task} around one clear promise doubled signups within {period}.",
        "After {period} of {tool} experiments, the only thing that moved revenue for {task} was email.",
        "A customer asked for an export feature in {task}, and that request turned into the paid tier.",
        "I shared the {task} revenue dashboard publicly and got {num} thoughtful replies with feature ideas.",
    ],
    "remote-work": [
        "Our team of {num} switched to {tool} for {task} and meetings dropped to two per week.",
        "After {period} remote, {task} became easier once we wrote a proper template for it.",
        "I onboarded a new engineer using only {tool} and she shipped to production on day three.",
        "We tried {tool} for {period} and the quiet people finally started contributing in discussions.",
        "During {task} across five timezones, a shared checklist prevented most of the dropped balls.",
        "My manager started {tool} for {task} and it was the first time remote feedback felt personal.",
        "We lost a great hire because {task} was an afterthought, never again after that lesson.",
        "Replacing daily calls with {tool} gave our team back almost {num} hours every week.",
        "Our handbook section on {task} is the most visited page, which says a lot about what people need.",
        "After {period} we stopped tracking online status and started tracking outcomes, morale went up.",
    ],
    "devops-lessons": [
        "Our worst outage started with {task} that nobody had practiced in {period}.",
        "We moved to {tool} over {period} and the number of late night pages dropped noticeably.",
        "During one incident {tool} showed the problem in seconds, but nobody knew which dashboard to open.",
        "A forgotten cron job handling {task} failed silently for {num} days before a customer noticed.",
        "We practiced {task} quarterly for {period} and the real event felt almost routine.",
        "Adopting {tool} without an owner gave us {num} abandoned configs within a few months.",
        "Our on-call engineer fixed {task} at night and wrote the runbook the next morning, now it is standard.",
        "Migrating {task} to {tool} exposed {num} hardcoded secrets that had lived in the repo for years.",
        "We lost an afternoon because {task} depended on a manual step that only one person remembered.",
        "After {period} of noisy alerts, deleting half of them made the remaining ones trustworthy again.",
    ],
}

QUESTIONS = {
    "ai-agents": [
        "How do you decide when a task deserves an agent instead of a fixed workflow?",
        "Are you running evals on every prompt change or only before releases?",
        "What does your escalation path to a human look like when the agent gets stuck?",
        "Did you find any framework worth the lock in, or is plain code still winning for you?",
        "How are you handling retries when a tool call times out halfway through a task?",
        "Curious how you measure cost per completed task rather than cost per token.",
        "Do you let the agent write to production systems, or only draft changes for review?",
        "What tracing setup gives you the clearest picture of why an agent made a decision?",
    ],
    "python-tips": [
        "Do you enforce type hints in CI or keep them as documentation only?",
        "What is your take on dataclasses versus pydantic for internal data that never leaves the process?",
        "Any favorite profiling tool beyond cProfile for long running jobs?",
        "How do you convince a team that has used setup.py for a decade to switch tooling?",
        "Which standard library module do you think most developers overlook?",
        "Do you teach comprehensions before or after plain loops when mentoring beginners?",
        "How strict is your linter configuration on older codebases with lots of legacy code?",
        "Has anyone measured the real speedup from the newer interpreter releases on their workload?",
    ],
    "startup-advice": [
        "How did you know it was the right time to hire your first salesperson?",
        "What metric did you track weekly before you had meaningful revenue?",
        "Did you share the cap table details with early employees, and how did that go?",
        "How many customer conversations did it take before the pattern became obvious?",
        "Would you raise from angels again or go straight to a seed fund next time?",
        "What made you confident enough to raise prices on existing customers?",
        "How do you protect maker time when every investor wants a quick call?",
        "What would you cut first if you had to extend runway by six months tomorrow?",
    ],
    "indie-hacking": [
        "Which channel brought your first hundred users, and did it keep working later?",
        "How do you decide when a side project deserves more of your evenings?",
        "Do you offer a free tier, or did a trial convert better for you?",
        "How are you handling sales tax and invoices without losing whole weekends?",
        "What made you pick that price point, was it competitors or customer interviews?",
        "Did building in public ever backfire with copycats for you?",
        "How long did you give the project before deciding whether to keep going?",
        "What does your weekly routine look like when juggling a day job and a product?",
    ],
    "remote-work": [
        "How do you keep async updates from turning into walls of text nobody reads?",
        "What does onboarding look like for someone joining from a very different timezone?",
        "Do you still do video standups, or did you move everything into written threads?",
        "How often does your team meet in person, and who pays for the travel?",
        "What tool do you use for the decision log, or is it just a shared document?",
        "How do managers on your team notice burnout when nobody is in the same room?",
        "Did you set explicit response time expectations, and did people actually follow them?",
        "Which meeting did you cancel first and did anyone miss it afterwards?",
    ],
    "devops-lessons": [
        "How often do you actually run restore drills, and who owns them?",
        "What is your rule for deleting an alert that nobody acts on?",
        "Do you page developers directly or route everything through a platform team first?",
        "How do you keep runbooks from going stale between incidents?",
        "Is anyone running canary deploys on stateful services, and how do you handle migrations?",
        "What finally convinced leadership to fund reliability work over new features?",
        "How long is your on-call rotation, and how do you compensate for it?",
        "Which dashboard do you open first when an incident starts?",
    ],
}

OPENERS = [
    "Hard agree.", "This matches my experience.", "Partly agree, with one caveat.", "Honestly this is underrated.",
    "Saving this thread.", "Counterpoint from a small team:", "Been there.", "Yes, and the nuance matters.",
    "Strong agree on the first part.", "Interesting framing.", "Respectfully, it depends on scale.",
    "This is the part people skip.", "Same lesson here.", "Took me years to learn this.", "100 percent.",
]

CONTEXTS = [
    "Speaking as someone on a team of {num},", "At my last company,", "From a consulting angle,",
    "In our case,", "As a solo founder,", "After {period} of trying it,", "On a team that ships weekly,",
    "Coming from a big company background,", "In regulated industries,", "For early stage teams,",
]

CONTEXTS_START = tuple(c.split(" ", 1)[0] for c in CONTEXTS)

FIRST_NAMES = ["maya", "devon", "priya", "lucas", "aisha", "tomas", "nina", "omar", "grace", "kenji", "sofia",
               "ravi", "elena", "marcus", "leah", "jonah", "zara", "felix", "amara", "noah", "ines", "caleb",
               "yuki", "hana", "diego", "farah", "owen", "mila", "arjun", "chloe", "samir", "ruth", "theo",
               "lena", "victor", "tara", "ivan", "nora", "kofi", "anya", "ben", "clara", "malik", "eva",
               "rohan", "julia", "sean", "mei", "adrian", "layla"]
HANDLE_TAILS = ["builds", "codes", "dev", "ships", "writes", "ops", "data", "hq", "labs", "io", "makes",
                "thinks", "eng", "pm", "tech", "cloud", "py", "ai", "works", "remote"]

# Junk replies ---------------------------------------------------------------------------

BOT_TEXTS = [
    "This is such a great insight, thanks for sharing this with everyone! 🚀🚀",
    "Great thread! Really valuable insights here, thanks for sharing with the community 🙌",
    "Amazing post, love this so much, thanks for sharing these valuable insights!! 🔥",
]

CRYPTO_SPAM = [
    "gm ser, wagmi 🚀 stay locked in, the next leg up is coming for all of us frens",
    "gm gm! stay locked in fren, this is the revolution onchain degen season is here 🔥",
    "Wen token ser? Early anons are going to make it, wagmi, stay locked in 💎🙌",
    "GIVEAWAY 🎁 1,000 USDT to 5 winners! Follow, like and retweet to enter, ends in 24h gm",
    "Evening fren, revolution is the power of change, stay locked in and keep stacking onchain",
    "Airdrop live now for early supporters, connect wallet and claim before it ends ser wagmi",
]

GENERIC = [
    "Great post! Love this, thanks for sharing, amazing insights as always!",
    "So true, love this! Thanks for sharing, this is amazing and very helpful",
    "Amazing thread, thanks for sharing! Love this so much, great insights here",
]

SHORT = ["So true!", "This 👆", "Facts.", "Needed this today", "100%", "lol yes", "Bookmarked", "Exactly this"]

OFFENSIVE = [
    "This is the dumbest take I have read all week, you clearly have no idea what you are talking about, idiot",
    "Shut up, nobody cares about your garbage opinion, go back to your useless little startup, moron",
    "What a load of crap, only a complete idiot would believe this stupid nonsense about software",
    "You are a clown and this thread is pathetic trash, delete your account and stop wasting our time",
]

NON_ENGLISH = {
    "es": ["Totalmente de acuerdo, en nuestro equipo aprendimos esto después de muchos meses de errores y reuniones inútiles.",
           "Muy buena reflexión, aunque creo que depende mucho del tamaño de la empresa y de la cultura del equipo."],
    "de": ["Sehr guter Punkt, wir haben genau diese Erfahrung in unserem Team nach einem schwierigen Jahr gemacht.",
           "Das stimmt leider, bei uns hat es auch viel zu lange gedauert, bis alle die Dokumentation ernst genommen haben."],
    "fr": ["Tout à fait d'accord, dans notre équipe nous avons appris cette leçon après plusieurs mois très difficiles.",
           "Très bonne remarque, mais je pense que cela dépend beaucoup de la taille de l'entreprise et du contexte."],
    "pt": ["Concordo totalmente, na nossa empresa aprendemos isso depois de muitos meses de erros e reuniões inúteis.",
           "Excelente ponto, mas acho que depende muito do tamanho da equipe e da cultura da empresa no dia a dia."],
}

CONTACT = [
    "Happy to walk you through our setup in detail, email me at jordan.miles@example.com and I will send notes.",
    "We solved exactly this for three clients already, call me at +1 415 555 0142 to set up a quick chat.",
    "If anyone wants the full checklist we use, write to ops-help@example.org and mention this thread please.",
]

URL_REPLIES = [
    "I wrote a longer breakdown of how we handled this, full post here https://example.com/blog/lessons",
    "We open sourced the tooling we use for this, repo is at https://github.com/example/toolkit if useful",
    "Great point, I covered a similar story in my newsletter this week www.example.net/issue-42 worth a look",
]

MEDIA_REPLIES = [
    "Here is the architecture diagram we ended up with after three rewrites, curious what you think of it",
    "Screenshot of our dashboard after the change, the drop in the middle is when we switched approaches",
    "Made a quick chart of our numbers over the last year since people keep asking about the trend",
]
