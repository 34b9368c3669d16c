"""Write the quick start's invented NER sample: train.txt, valid.txt and test.txt.

    python examples/data/ner-quickstart/generate.py [OUT_DIR]    (default: this folder)

Every sentence is one of the templates below with its slots ({PER}, {CITY}, {COMPANY}, ...)
filled from the name lists. Each split has its own share of the templates and of every list
(train 70%, valid 10%, test 20%), so valid and test F1 measure sentence shapes and names the model
has never seen. The names of the README's `hone predict` example appear in no list.

The files are in CoNLL-2003's four columns: token, part of speech, chunk, IOB2 entity tag
(PER, LOC, ORG, MISC). The entity tags are exact; the part-of-speech and chunk columns come from
a small word list and suffix rules, so they are plausible rather than gold.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 2024
SIZES = {"train": 1600, "valid": 200, "test": 500}

FIRST_NAMES = """
    Anna Jonas Priya Kenji Amara Lucas Sofia Tomasz Ingrid Mateo Yusuf Chloe Dmitri Fatima Henrik
    Aisha Lars Elena Rafael Nadia Oliver Mei Samuel Leila Viktor Hannah Diego Zara Felix Noor Pablo
    Greta Tariq Julia Emil Rosa Kwame Clara Arjun Ivana Sven Lucia Omar Freya Hugo Elif Thomas
    Camille Ravi Astrid Paolo Sara Milan Beatriz Jakob Amelie Kofi Nina Bruno Leah Anders Yara
    Daniel Ines Stefan Aiko Luca Marta Erik Isabel Nikolai Eva Jamal Helena Tobias Lena Carlos
    Irene Adam Sofie Georg Alba Pieter Mira Kai Selin Andrea Olga Benedikt Ada Hamid Rita Jens
    Teresa Malik Vera Oskar Lina Ruben Patrick Elsa Dario Hana Ahmed Ellen Mikkel Carmen Theo
    Agnes Joao Femi Chiara Wojciech Ruth Simon Yuki Gabriel Petra Idris Lotte Kamal Frida Ivan
""".split()
LAST_NAMES = """
    Novak Lindqvist Okafor Tanaka Moreau Fischer Rossi Kowalski Haddad Silva Jensen Petrov Nakamura
    Brandt Ferreira Larsen Dubois Costa Hoffmann Nilsen Yilmaz Mendes Bauer Andersson Ibrahim Kaur
    Weber Horvath Santos Berg Lehmann O'Brien Mensah Johansson Richter Popescu Ortega Sato Kaplan
    Hansen Wolff Alves Duarte Kovacs Lund Schneider Pereira Varga Moretti Eriksen Nowak Chen
    Wagner Dalton Ruiz Ivanova Hartmann Osei Magnusson Gruber Carvalho Reyes Stein Murphy Aydin
    Svensson Marchetti Castro Kumar Vogel Holm Fontaine Morales Dahl Sorensen Navarro Bianchi
    Fuchs Hughes Barros Kim Lambert Winter Haugen Ekstrom Pavlov Romano Gallagher Jovanovic Sandoval
    Adeyemi Brunner Takahashi Quinn Maier Lopes Strand Zimmermann Baptiste Engel Rasmussen Toth
""".split() + ["Van Dijk", "De Luca", "Da Silva", "El Amrani", "Le Roux", "Van der Berg"]
CITIES = """
    Bergen Porto Madrid Vienna Prague Nairobi Lagos Osaka Toronto Lima Quito Dublin Helsinki Warsaw
    Athens Cairo Hanoi Manila Seoul Sydney Perth Denver Chicago Boston Montreal Santiago Bogota
    Istanbul Tbilisi Riga Tallinn Vilnius Krakow Munich Hamburg Lyon Marseille Seville Valencia
    Naples Turin Geneva Zurich Antwerp Rotterdam Gothenburg Aarhus Reykjavik Tromso Stavanger
    Trondheim Faro Coimbra Braga Casablanca Tunis Accra Dakar Kigali Bilbao Gdansk Leipzig Bordeaux
    Nantes Malmo Uppsala Tampere Zadar Ljubljana Sarajevo Varna Bucharest Belgrade Odessa Kyiv Minsk
    Glasgow Cardiff Leeds Bristol Edinburgh Cork Galway Brno Graz Salzburg Innsbruck Basel Lucerne
    Valmora Kessling Dunhaven Orrick Tolvern Brannock Estmere Halden Arvika Corvale
""".split() + [
    "New York", "Los Angeles", "San Diego", "Buenos Aires", "Rio de Janeiro", "Mexico City",
    "Kuala Lumpur", "Hong Kong", "Tel Aviv", "Abu Dhabi", "Cape Town", "Addis Ababa", "Port Elris",
    "St Petersburg", "Las Palmas", "Santa Cruz", "Kerrow Bay", "Fenwick Falls", "New Tolbury",
]
COUNTRIES = """
    Norway Portugal Spain Brazil Kenya Japan Canada Chile Peru Poland Greece Egypt Vietnam Germany
    France Italy Sweden Denmark Finland Iceland Morocco Ghana Senegal India Mexico Argentina Turkey
    Estonia Latvia Lithuania Ireland Scotland Wales Austria Switzerland Belgium Netherlands Croatia
    Serbia Romania Bulgaria Hungary Ukraine Nigeria Ethiopia Rwanda Tunisia Colombia Ecuador
    Uruguay Australia Indonesia Malaysia Thailand Korea Mongolia Nepal Valdoria Estmark
""".split() + ["New Zealand", "South Africa", "Costa Rica", "Sri Lanka", "the United States",
               "the Czech Republic", "the Philippines"]
NATIONALITIES = """
    Norwegian Portuguese Spanish Brazilian Kenyan Japanese Canadian Chilean Peruvian Polish Greek
    Egyptian Vietnamese German French Italian Swedish Danish Finnish Icelandic Moroccan Ghanaian
    Indian Mexican Argentine Turkish Estonian Irish Scottish Austrian Swiss Belgian Dutch Croatian
    Hungarian Nigerian Colombian Australian Thai Korean Valdorian
""".split()
LANGUAGES = """
    English Spanish French German Italian Swedish Polish Greek Turkish Japanese Korean Arabic
    Hindi Dutch Finnish Czech Hungarian Swahili Vietnamese Russian
""".split()
EVENTS = [
    "World Cup", "Olympic Games", "Champions League", "Tour de France", "European Championship",
    "Winter Olympics", "Davis Cup", "Euro Cup", "Asian Games", "Commonwealth Games", "Film Festival",
    "World Championships", "Grand Prix", "Open Championship", "Nations League", "Paralympic Games",
    "Book Fair", "Jazz Festival", "Ryder Cup", "America's Cup", "Eurovision Song Contest",
]
AWARDS = [
    "Nobel Prize", "Turing Award", "Booker Prize", "Fields Medal", "Pritzker Prize", "Golden Bear",
    "Palme d'Or", "Abel Prize", "Kyoto Prize", "Polar Prize",
]
COMPANY_STEMS = """
    Kestrel Bluefin Aurora Polaris Granite Silverline Redwood Northgate Helix Vantage Brightwater
    Ironbridge Seastar Tidewater Copperfield Baltica Meridian Solenne Zephyr Corvus Aldren Ostara
    Varo Tessaly Quintus Arcadia Bellwether Cobalt Driftwood Falcon Glacier Harrow Juniper
    Kingsbridge Lumen Marlow Nimbus Orion Pinecrest Riverton Sablewood Thornfield Vesper Westmark
    Yarrow Zenith Alder Birchwood Calder Dunmore Elara Gullwing Hollis Jasper Larkspur Ardent Brisa
    Castell Estrela Hesper Kobalt Lodestar Montane Nereid Oberon Pelican Rowan Saltire Trident
    Valmont Wexford Auric Boreal Halcyon Skylark Amberly Crestline Ferro Greyhaven Novalis Oakhurst
""".split()
COMPANY_KINDS = """
    Logistics Freight Airlines Airways Holdings Group Systems Energy Motors Bank Insurance Partners
    Labs Foods Media Pharma Telecom Steel Mining Capital Software Robotics Textiles Lines Ferries
    Cargo Marine Railways Technologies Solutions Industries Brewing Chemicals Analytics Networks
    Studios Press Electric Power Biotech Health Trading Ventures Construction Engineering Aerospace
    Consulting Hotels Shipyards Dairy Fisheries Timber Packaging Semiconductors Outfitters Optics
""".split()
TEAM_KINDS = "United Rovers Athletic City Wanderers Rangers Albion Sporting Dynamo Olympic".split()
INSTITUTIONS = [
    "Ministry of Finance", "Ministry of Health", "National Weather Service", "Red Cross",
    "World Health Organization", "United Nations", "European Commission", "Central Bank",
    "Supreme Court", "Space Agency", "Coast Guard", "Climate Council", "Trade Commission",
    "World Bank", "Science Foundation", "Football Association", "Olympic Committee", "Senate",
    "Competition Authority", "Ministry of Transport", "Energy Agency", "Statistics Office",
]
PARTIES = [
    "Green Party", "Labour Party", "Liberal Party", "Conservative Party", "Centre Party",
    "Social Democrats", "Christian Democrats", "Farmers Union", "Progress Party", "Pirate Party",
    "Left Alliance", "National Front", "Reform Party", "Unity Party", "Citizens Movement",
]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()

TEMPLATES = """
    {PER} flew from {CITY} to {CITY} on {DAY} .
    {PER} flew from {CITY} to {CITY} for talks with {COMPANY} .
    After a week in {CITY} , {PER} took the night train to {CITY} .
    The ferry from {CITY} to {CITY} was cancelled because of high winds .
    {COMPANY} will open a direct route between {CITY} and {CITY} in {MONTH} .
    Flights to {CITY} were delayed for three hours on {DAY} .
    {PER} , who grew up in {CITY} , now lives in {COUNTRY} .
    Tourists from {COUNTRY} crowded the old harbour of {CITY} .
    We drove from {CITY} to {CITY} in one long day .
    {PER} spent the summer walking across {COUNTRY} .
    The new airport outside {CITY} will handle twice as many passengers .
    {PER} and {PER} arrived in {CITY} late on {DAY} night .
    {COMPANY} cut the price of tickets from {CITY} to {COUNTRY} .
    Hotels in {CITY} were fully booked for the {EVENT} .
    {PER} moved to {CITY} in {YEAR} to work for {COMPANY} .
    {PER} missed the last bus from {CITY} and stayed the night .
    A storm closed the main road between {CITY} and {CITY} .
    {PER} travelled to {CITY} for a meeting with {PER} .
    From {CITY} , the train continues north to {CITY} .
    Visitors to {COUNTRY} rose by {PCT} percent last year , the tourism board said .
    {PER} flew to {CITY} on behalf of {ORG} .
    Our guide in {CITY} was {PER} , a retired teacher .
    {NAT} travellers made up a third of the guests at the hotel in {CITY} .
    The cruise ship left {CITY} for {CITY} with {NUM} passengers on board .
    {PER} took a job in {CITY} with {COMPANY} and later moved to {COUNTRY} .
    Passengers on the night flight from {CITY} to {CITY} were stuck for six hours .
    {PER} booked a room in {CITY} through {COMPANY} .
    Heavy snow in {COUNTRY} forced {COMPANY} to cancel all flights on {DAY} .
    The road from {CITY} to the coast is closed until {MONTH} .
    {PER} , a pilot with {COMPANY} , has flown the route to {CITY} for twenty years .
    When {PER} landed in {CITY} , nobody was waiting at the airport .
    The trip from {CITY} to {CITY} takes about four hours by bus .
    {PER} rented a car at the airport in {CITY} and drove south .
    The overnight bus to {CITY} leaves from the main square .
    {COMPANY} flies to {CITY} three times a week .
    Is there a direct train from {CITY} to {CITY} ?
    {NAT} tourists spent more money in {COUNTRY} than ever before .
    After landing in {CITY} , the plane was sent on to {CITY} .
    {PER} spent two nights in {CITY} before sailing to {COUNTRY} .
    The bridge linking {CITY} and {CITY} reopened on {DAY} .
    {COMPANY} shares rose {PCT} percent in {CITY} on {DAY} .
    {COMPANY} said it would buy {COMPANY} for {NUM} million euros .
    {PER} , chief executive of {COMPANY} , said profits would fall this year .
    {PER} was named chief financial officer of {COMPANY} .
    {COMPANY} will cut {NUM} jobs at its plant in {CITY} .
    Analysts at {COMPANY} expect growth to slow in {COUNTRY} .
    The deal makes {COMPANY} the largest supplier in {COUNTRY} .
    {COMPANY} reported a net loss of {NUM} million dollars for the quarter .
    Investors sold shares of {COMPANY} after the chairman , {PER} , resigned .
    {COMPANY} and {COMPANY} agreed to merge their operations in {COUNTRY} .
    " We are very pleased with the results , " said {PER} of {COMPANY} .
    Sales at {COMPANY} grew {PCT} percent in {MONTH} .
    {COMPANY} opened a new office in {CITY} last week .
    The board of {COMPANY} approved the plan on {DAY} .
    {PER} left {COMPANY} to start a small firm in {CITY} .
    A spokesman for {COMPANY} declined to comment .
    {COMPANY} signed a contract with {ORG} worth {NUM} million dollars .
    The {NAT} carmaker {COMPANY} recalled {NUM} vehicles .
    Workers at the {COMPANY} factory in {CITY} went on strike .
    {COMPANY} , based in {CITY} , makes parts for wind turbines .
    Shares in {COMPANY} fell sharply after the report .
    {SURNAME} said the firm had no plans to sell its stake in {COMPANY} .
    Last year {COMPANY} moved its headquarters from {CITY} to {CITY} .
    The bank lent {COMPANY} {NUM} million euros to build a warehouse near {CITY} .
    {COMPANY} hired {PER} to run its business in {COUNTRY} .
    According to {PER} , demand for steel in {COUNTRY} is rising again .
    {COMPANY} expects to deliver the first trucks to {COMPANY} in {YEAR} .
    {PER} has worked for {COMPANY} since {YEAR} .
    {COMPANY} , the biggest employer in {CITY} , will close two factories .
    In {MONTH} , {COMPANY} agreed to pay {NUM} million euros to settle the case .
    The chief executive , {PER} , told shareholders that {COMPANY} had a difficult year .
    {COMPANY} makes software for hospitals in {COUNTRY} and {COUNTRY} .
    Profits at {COMPANY} doubled after it started selling to {COUNTRY} .
    {PER} founded {COMPANY} in a garage in {CITY} in {YEAR} .
    A court in {CITY} fined {COMPANY} {NUM} million dollars on {DAY} .
    {COMPANY} denied the report and said its accounts were in order .
    The union at {COMPANY} rejected the offer .
    Orders for new aircraft from {COMPANY} fell in {MONTH} .
    {PER} , a former banker at {COMPANY} , now runs a vineyard near {CITY} .
    The {NAT} bank {COMPANY} raised its interest rates .
    Shareholders of {COMPANY} will vote on the offer in {MONTH} .
    {COMPANY} blamed the weak results on the cold weather in {COUNTRY} .
    Most of the coffee sold by {COMPANY} comes from {COUNTRY} .
    {PER} bought a stake in {COMPANY} last year .
    The price war between {COMPANY} and {COMPANY} is hurting smaller firms .
    {COMPANY} plans to list its shares in {CITY} next year .
    Regulators in {COUNTRY} are looking into the takeover of {COMPANY} .
    {COMPANY} chairman {PER} will step down in {MONTH} .
    Exports from {COUNTRY} to {COUNTRY} fell by {PCT} percent .
    {SURNAME} joined the firm as an intern and is now its chief executive .
    {TEAM} beat {TEAM} {SCORE} on {DAY} .
    {PER} scored twice as {TEAM} won {SCORE} in {CITY} .
    {PER} will lead the {NAT} team at the {EVENT} .
    {TEAM} signed the striker {PER} from {TEAM} .
    {PER} won the {EVENT} for the second time .
    The {EVENT} will be held in {CITY} in {YEAR} .
    {PER} of {COUNTRY} took the gold medal in the 200 metres .
    {TEAM} coach {PER} was sent off in the second half .
    {PER} finished third behind {PER} and {PER} .
    {COUNTRY} drew {SCORE} with {COUNTRY} in a friendly in {CITY} .
    Fans of {TEAM} celebrated in the streets of {CITY} .
    {PER} ( {COUNTRY} ) beat {PER} ( {COUNTRY} ) {SCORE} {SCORE} .
    {SURNAME} missed a penalty in the last minute .
    The {NAT} cyclist {PER} won the stage into {CITY} .
    {TEAM} are top of the table after {NUM} games .
    {PER} has joined {TEAM} on a two-year contract .
    {PER} retired after losing in the first round of the {EVENT} .
    In {CITY} , {PER} set a new national record .
    {TEAM} manager {PER} said the players were tired .
    The marathon in {CITY} was won by {PER} in two hours and ten minutes .
    {PER} broke a wrist in training and will miss the {EVENT} .
    {PER} replaced {SURNAME} as captain of {TEAM} .
    {TEAM} lost at home to {TEAM} for the first time since {YEAR} .
    {TEAM} have won four of their last five matches .
    A late goal by {PER} gave {TEAM} a {SCORE} win over {TEAM} .
    {PER} , the {NAT} champion , lost in straight sets .
    The {NAT} swimmer {PER} broke the world record in {CITY} .
    {TEAM} fired their coach after a {SCORE} defeat in {CITY} .
    Tickets for the final in {CITY} sold out in minutes .
    {COUNTRY} qualified for the {EVENT} for the first time .
    {PER} , who plays for {TEAM} , was named player of the year .
    {COUNTRY} will host the {EVENT} for the first time in {YEAR} .
    It was the first win for {TEAM} in {CITY} since {YEAR} .
    {TEAM} striker {PER} is out for six weeks with a knee injury .
    The {NAT} runner {PER} pulled out of the race in {CITY} .
    {PER} beat the world champion {PER} in the semi-final .
    Supporters of {TEAM} travelled to {CITY} for the cup final .
    {SURNAME} , 24 , has played {NUM} games for {COUNTRY} .
    The {EVENT} starts in {CITY} on {DAY} .
    {TEAM} and {TEAM} shared the points after a {SCORE} draw .
    {PER} was elected mayor of {CITY} on {DAY} .
    The prime minister of {COUNTRY} , {PER} , will visit {CITY} next week .
    {PER} met {NAT} officials in {CITY} to discuss trade .
    The {ORG} called for new elections in {COUNTRY} .
    Thousands marched through {CITY} to protest against the new law .
    {COUNTRY} and {COUNTRY} signed a trade agreement in {CITY} .
    {PER} , leader of the {PARTY} , resigned after the vote .
    The {PARTY} won {NUM} seats in parliament .
    Foreign minister {PER} said {COUNTRY} would reopen its embassy in {CITY} .
    The {ORG} sent observers to the election in {COUNTRY} .
    Talks between {COUNTRY} and {COUNTRY} broke down on {DAY} .
    The {NAT} government announced a new tax on fuel .
    {PER} told reporters in {CITY} that the talks had gone well .
    Police in {CITY} arrested {NUM} people after the protest .
    {PER} became the youngest head of the {ORG} .
    The mayor of {CITY} , {PER} , opened the new bridge .
    Voters in {COUNTRY} rejected the plan by a narrow margin .
    The {ORG} will meet in {CITY} in {MONTH} .
    {PER} accused {PER} of misleading parliament .
    Under the agreement , {COUNTRY} will supply gas to {COUNTRY} until {YEAR} .
    {SURNAME} , a member of the {PARTY} , voted against the budget .
    The president of {COUNTRY} , {PER} , arrived in {CITY} for a two-day visit .
    {PER} won the election with {PCT} percent of the vote .
    Members of the {PARTY} walked out of the debate .
    {ORG} officials met in {CITY} to discuss the crisis .
    Opposition leader {PER} called the budget a disaster .
    {COUNTRY} recalled its ambassador from {COUNTRY} on {DAY} .
    A court in {CITY} ruled against the {ORG} .
    {PER} , the {NAT} foreign minister , flew to {CITY} for talks .
    Protesters gathered outside the {ORG} in {CITY} .
    The {PARTY} wants to raise taxes on large companies .
    {PER} has been mayor of {CITY} since {YEAR} .
    In a speech in {CITY} , {PER} promised lower taxes .
    The {ORG} said that the economy of {COUNTRY} would grow by {PCT} percent .
    Diplomats from {COUNTRY} and {COUNTRY} met in secret in {CITY} .
    {PER} stepped down as leader of the {PARTY} after ten years .
    Elections in {COUNTRY} will be held in {MONTH} .
    {COUNTRY} joined the {ORG} in {YEAR} .
    Researchers at {UNIVERSITY} found a new species of frog in {COUNTRY} .
    {PER} of {UNIVERSITY} won the {AWARD} for work on batteries .
    A team led by {PER} published the results on {DAY} .
    The {ORG} launched a weather satellite from {COUNTRY} .
    The telescope in {COUNTRY} is run by {UNIVERSITY} .
    {PER} , a biologist at {UNIVERSITY} , studies whales off the coast of {COUNTRY} .
    Scientists from {COUNTRY} and {COUNTRY} will share the data .
    {COMPANY} is testing a new vaccine with doctors in {CITY} .
    {PER} gave a lecture on climate change in {CITY} .
    The museum in {CITY} will show paintings by {PER} until {MONTH} .
    {PER} wrote the novel while living in {CITY} .
    The {NAT} film by {PER} won the top prize at the {EVENT} .
    {PER} and {PER} developed the method at {UNIVERSITY} in {YEAR} .
    The {ORG} warned of heavy snow in the north of {COUNTRY} .
    The concert in {CITY} was sold out within an hour .
    {UNIVERSITY} will build a new laboratory near {CITY} .
    {PER} translated the book from {LANG} into {LANG} .
    Engineers at {COMPANY} built the first prototype in {CITY} .
    Funding from the {ORG} will support {NUM} students a year .
    The {AWARD} went to {PER} and {PER} .
    A study by {UNIVERSITY} shows that sleep improves memory .
    {PER} and a team from {UNIVERSITY} spent a year at sea near {COUNTRY} .
    The {ORG} will fund a new research centre in {CITY} .
    Doctors at a hospital in {CITY} tested the drug on {NUM} patients .
    Data from the {ORG} show that the winter was the warmest since {YEAR} .
    {PER} , who teaches physics at {UNIVERSITY} , was awarded the {AWARD} .
    {PER} , an astronomer at {UNIVERSITY} , found a new comet .
    The {NAT} writer {PER} won the {AWARD} .
    Students at {UNIVERSITY} built a solar car and drove it to {CITY} .
    An exhibition about {NAT} design opens in {CITY} on {DAY} .
    The orchestra from {CITY} will play in {CITY} in {MONTH} .
    {PER} directed the film , which was shot in {COUNTRY} .
    Engineers from {COMPANY} and {UNIVERSITY} designed the new bridge .
    The first {LANG} edition of the book sold {NUM} copies .
    {PER} studied medicine in {CITY} before moving to {COUNTRY} .
    A rare bird was seen near {CITY} for the first time in decades .
    {CITY} had its warmest {MONTH} on record .
    {COUNTRY} is famous for its mountains and lakes .
    I met {PER} at a conference in {CITY} .
    My sister works for {COMPANY} in {CITY} .
    {PER} lives with two cats in a small flat in {CITY} .
    Call {PER} before you leave for {CITY} .
    {PER} said : " The city has changed a lot . "
    The restaurant on the corner is owned by {PER} .
    Is {PER} still working at {COMPANY} ?
    {PER} , {PER} and {PER} were the only ones who stayed .
    They bought the house from {PER} in {YEAR} .
    {PER} speaks {LANG} , {LANG} and a little {LANG} .
    The bakery sells {NAT} bread and pastries .
    {PER} was born in {CITY} , {COUNTRY} , in {YEAR} .
    Our office is in {CITY} , but most of the team works from {CITY} .
    {PER} thanked the {ORG} for its help .
    Ask for {PER} at the front desk .
    Have you ever been to {CITY} ?
    The letter from {PER} arrived on {DAY} .
    We had dinner with {PER} and {PER} in {CITY} .
    Yesterday {PER} finally finished the book about {COUNTRY} .
    The best coffee in {CITY} is served by a small cafe near the station .
    {PER} asked whether {COMPANY} still delivers to {CITY} .
    Thanks to {PER} , the school in {CITY} has a new library .
    {PER} grew up speaking {LANG} at home .
    Do you know where {PER} works now ?
    She moved back to {COUNTRY} after ten years abroad .
    {PER} and I grew up on the same street in {CITY} .
    Have you heard that {PER} is moving to {COUNTRY} ?
    My uncle drives a taxi in {CITY} .
    {PER} sent a postcard from {CITY} .
    Please give this letter to {PER} .
    Every summer {PER} visits relatives in {COUNTRY} .
    Last night {PER} cooked a {NAT} dish for the whole family .
    Prices rose {PCT} percent in the last quarter .
    The meeting was moved to next {DAY} .
    It rained all morning , so the match started late .
    Nobody expected the results to be so good .
    The company said it would hire more engineers next year .
    He sold his old car and bought a bicycle .
    The river flooded after three days of heavy rain .
    Most of the shops close early on {DAY} .
    The team needs a new coach before the season starts .
    She called her mother every evening at eight .
    Ticket prices will rise by {PCT} percent in {MONTH} .
    The report will be published later this week .
    The price of bread has doubled in two years .
    Everyone agreed that the plan was too expensive .
    The first train leaves at six in the morning .
    Sales fell sharply in the second half of the year .
    The weather will stay cold until the end of the week .
    More than half of the workers voted for the strike .
    The new rules come into force next month .
    Nobody knows how long the repairs will take .
""".strip().splitlines()

POS = {
    **dict.fromkeys("the a an this that every each no all".split(), "DT"),
    **dict.fromkeys("of in on at from for with by after before between into during until near against as "
                    "since within across because about behind through off under like than outside while "
                    "worth over whether".split(), "IN"),
    **dict.fromkeys("will would can could should may must".split(), "MD"),
    **dict.fromkeys("he she it they we i you".split(), "PRP"),
    **dict.fromkeys("his her its their my our your".split(), "PRP$"),
    **dict.fromkeys("and or but".split(), "CC"),
    **dict.fromkeys("one two three four five six eight ten million".split(), "CD"),
    **dict.fromkeys("new old last next first second third small long high heavy national net main narrow "
                    "top direct late retired financial foreign chief good pleased famous little prime tired "
                    "difficult expensive straight two-year two-day cold large lower rare same solar weak overnight "
                    "many".split(), "JJ"),
    **dict.fromkeys("largest warmest youngest biggest best".split(), "JJS"),
    **dict.fromkeys("more smaller".split(), "JJR"),
    **dict.fromkeys("not still now later again very only so twice ever sharply early most well too "
                    "back abroad fully".split(), "RB"),
    **dict.fromkeys("is has says makes lives speaks studies works continues expects needs starts sells "
                    "delivers leaves takes teaches comes drives flies plays visits wants".split(), "VBZ"),
    **dict.fromkeys("are have expect close do know".split(), "VBP"),
    **dict.fromkeys("be buy sell start run build meet visit discuss supply share lead comment protest slow "
                    "fall rise hire deliver work leave show support reopen miss handle merge open pay settle "
                    "fund come grow give host list raise stay please".split(), "VB"),
    **dict.fromkeys("was were had said told took won beat met left made gave wrote bought sold grew fell "
                    "rose drew broke became set led found built cut spent flew drove arrived went lost lent "
                    "stayed".split(), "VBD"),
    **dict.fromkeys("been gone sent named based owned held born elected booked cancelled delayed stuck "
                    "awarded heard seen".split(), "VBN"),
    **dict.fromkeys("up down out".split(), "RP"),
    **dict.fromkeys("morning evening night record bus gas friendly meeting training crisis funding".split(), "NN"),
    **dict.fromkeys("people".split(), "NNS"),
    **dict.fromkeys(" ".join(DAYS + MONTHS).lower().split(), "NNP"),
    "who": "WP", "when": "WRB", "where": "WRB", "how": "WRB", "to": "TO", "there": "EX",
}
NOUN_PHRASE = {"DT", "JJ", "JJR", "JJS", "NN", "NNS", "NNP", "NNPS", "CD", "PRP", "PRP$"}
VERB_PHRASE = {"MD", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ"}


def shares(names: list[str]) -> dict[str, list[str]]:
    """Every list split the same way each run: of each ten names, seven train, one valid, two test."""
    return {
        "train": [n for i, n in enumerate(names) if i % 10 < 7],
        "valid": [n for i, n in enumerate(names) if i % 10 == 7],
        "test": [n for i, n in enumerate(names) if i % 10 > 7],
    }


class Filler:
    """Picks the names and numbers that fill one split's template slots."""

    def __init__(self, split: str, rng: random.Random) -> None:
        self.rng = rng
        self.names = {key: shares(names)[split] for key, names in {
            "first": FIRST_NAMES, "last": LAST_NAMES, "city": CITIES, "country": COUNTRIES,
            "nationality": NATIONALITIES, "language": LANGUAGES, "event": EVENTS, "award": AWARDS,
            "stem": COMPANY_STEMS, "kind": COMPANY_KINDS, "team": TEAM_KINDS,
            "institution": INSTITUTIONS, "party": PARTIES,
        }.items()}

    def pick(self, key: str) -> str:
        return self.rng.choice(self.names[key])

    def person(self) -> str:
        return f"{self.pick('first')} {self.pick('last')}"

    def company(self) -> str:
        form = self.rng.random()
        if form < 0.65:
            return f"{self.pick('stem')} {self.pick('kind')}"
        if form < 0.8:
            return self.pick("stem")
        if form < 0.9:
            return f"{self.pick('last')} {self.pick('kind')}"
        return f"{self.pick('stem')} {self.pick('kind')} {self.rng.choice(['Group', 'International'])}"

    def team(self) -> str:
        home = self.pick("city") if self.rng.random() < 0.8 else self.pick("stem")
        return f"{home} {self.pick('team')}"

    def university(self) -> str:
        return self.rng.choice([f"University of {self.pick('city')}", f"{self.pick('city')} University",
                                f"{self.pick('city')} Institute of Technology", f"{self.pick('stem')} College"])

    def organisation(self) -> str:
        if self.rng.random() < 0.7:
            return self.pick("institution")
        return f"{self.pick('nationality')} {self.pick('institution')}"

    def fill(self, slot: str) -> tuple[str, str]:
        """The text for ``slot`` and its entity type (``O`` for numbers and dates)."""
        fillers = {
            "PER": (self.person, "PER"), "SURNAME": (lambda: self.pick("last"), "PER"),
            "CITY": (lambda: self.pick("city"), "LOC"), "COUNTRY": (lambda: self.pick("country"), "LOC"),
            "COMPANY": (self.company, "ORG"), "TEAM": (self.team, "ORG"), "UNIVERSITY": (self.university, "ORG"),
            "ORG": (self.organisation, "ORG"), "PARTY": (lambda: self.pick("party"), "ORG"),
            "NAT": (lambda: self.pick("nationality"), "MISC"), "LANG": (lambda: self.pick("language"), "MISC"),
            "EVENT": (lambda: self.pick("event"), "MISC"), "AWARD": (lambda: self.pick("award"), "MISC"),
            "DAY": (lambda: self.rng.choice(DAYS), "O"), "MONTH": (lambda: self.rng.choice(MONTHS), "O"),
            "YEAR": (lambda: str(self.rng.randint(1990, 2024)), "O"),
            "NUM": (lambda: str(self.rng.randint(2, 400)), "O"),
            "PCT": (lambda: f"{self.rng.randint(1, 19)}.{self.rng.randint(1, 9)}", "O"),
            "SCORE": (lambda: f"{self.rng.randint(0, 6)}-{self.rng.randint(0, 4)}", "O"),
        }
        make, entity = fillers[slot]
        return make(), entity


def tagged(template: str, filler: Filler) -> list[tuple[str, str]]:
    """(token, IOB2 tag) pairs of one sentence made from ``template``; the "the" of a name such as
    "the Philippines" stays outside the entity, as in CoNLL-2003."""
    pairs: list[tuple[str, str]] = []
    for word in template.split():
        if not (word.startswith("{") and word.endswith("}")):
            pairs.append((word, "O"))
            continue
        text, entity = filler.fill(word[1:-1])
        tokens = text.split()
        if entity != "O" and tokens[0] == "the":
            pairs.append((tokens.pop(0), "O"))
        for i, token in enumerate(tokens):
            pairs.append((token, "O" if entity == "O" else f"{'I' if i else 'B'}-{entity}"))
    first, tag = pairs[0]
    pairs[0] = (first[0].upper() + first[1:], tag)
    return pairs


def part_of_speech(token: str, tag: str) -> str:
    lower = token.lower()
    if not token[0].isalnum():
        return token
    if token[0].isdigit():
        return "CD"
    if tag != "O":
        return "IN" if lower in {"of", "de", "der", "d'or"} else "NNP"
    if lower in POS:
        return POS[lower]
    for ending, pos in (("ing", "VBG"), ("ed", "VBD"), ("ly", "RB"), ("ss", "NN"), ("s", "NNS")):
        if lower.endswith(ending):
            return pos
    return "NN"


def chunks(pos_tags: list[str]) -> list[str]:
    """IOB chunk tags from parts of speech: noun, verb, prepositional and adverb phrases."""
    out: list[str] = []
    previous = "O"
    for i, pos in enumerate(pos_tags):
        following = pos_tags[i + 1] if i + 1 < len(pos_tags) else "."
        if pos in NOUN_PHRASE:
            phrase = "NP"
        elif pos in VERB_PHRASE or (pos == "TO" and following in VERB_PHRASE):
            phrase = "VP"
        elif pos in {"IN", "TO"}:
            phrase = "PP"
        elif pos == "RB":
            phrase = "ADVP"
        else:
            phrase = "O"
        out.append("O" if phrase == "O" else f"{'I' if phrase == previous else 'B'}-{phrase}")
        previous = phrase
    return out


def sentences(split: str, count: int, rng: random.Random) -> list[list[tuple[str, str]]]:
    filler = Filler(split, rng)
    templates = shares(TEMPLATES)[split]
    return [tagged(rng.choice(templates), filler) for _ in range(count)]


def conll(sentence: list[tuple[str, str]]) -> str:
    pos_tags = [part_of_speech(token, tag) for token, tag in sentence]
    rows = zip(sentence, pos_tags, chunks(pos_tags))
    return "".join(f"{token} {pos} {chunk} {tag}\n" for (token, tag), pos, chunk in rows)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for split, count in SIZES.items():
        rng = random.Random(f"{SEED}-{split}")
        blocks = ["-DOCSTART- -X- -X- O\n"] + [conll(s) for s in sentences(split, count, rng)]
        (out / f"{split}.txt").write_text("\n".join(blocks), encoding="utf-8")


if __name__ == "__main__":
    main()
